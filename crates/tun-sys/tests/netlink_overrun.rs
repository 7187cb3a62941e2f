//! A route socket whose receive queue overflows says so, and keeps working. Privileged: the flood of link
//! notifications is made in a namespace of the test's own.

use std::io;
use std::time::Duration;

use tun_sys::netlink::{Message, Messages, RECV_BUFFER_LEN, RecvError, RouteSocket};
use tun_test_support::{NetNs, wait_until};

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn unread_burst_is_reported_as_overrun_and_the_socket_keeps_working() {
    let ns = NetNs::tagged("tsys-overrun");
    let socket = ns
        .run_in(|| {
            let socket = RouteSocket::open_link_monitor()?;
            // The kernel raises this to its minimum: room for a couple of link messages.
            socket.set_recv_buffer_size(0)?;
            Ok::<_, io::Error>(socket)
        })
        .expect("socket");
    let flaps = vec!["link set lo up\nlink set lo down".to_owned(); 100];
    ns.ip_batch(&flaps).expect("ip -batch");

    let mut buf = vec![0; RECV_BUFFER_LEN];
    let mut overrun = false;
    for _ in 0..1000 {
        match socket.recv(&mut buf) {
            Ok(_) => {}
            Err(RecvError::Overrun) => {
                overrun = true;
                break;
            }
            Err(e) => panic!("before any overrun: {e}"),
        }
    }
    assert!(
        overrun,
        "200 unread notifications fit a minimal receive queue"
    );
    // Still usable: drain, then a request is answered.
    while socket.recv(&mut buf).is_ok() {}
    socket.request_link(1, 99).expect("request");
    let mut len = None;
    let answered = wait_until(Duration::from_secs(5), || match socket.recv(&mut buf) {
        Ok(n) => {
            len = Some(n);
            true
        }
        Err(RecvError::WouldBlock) => false,
        Err(e) => panic!("recv: {e}"),
    });
    assert!(answered, "no answer within 5 s");
    let len = len.unwrap_or_default();
    assert!(matches!(
        Messages::new(&buf[..len]).next(),
        Some(Ok(Message::NewLink(l))) if l.index == 1 && l.seq == 99
    ));
}
