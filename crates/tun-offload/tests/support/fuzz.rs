//! The checks behind the fuzz targets, shared with the stable-toolchain test that replays the committed
//! corpus. Each takes arbitrary bytes, never panics on its own account, and panics (a finding) only when
//! the engine breaks a rule.

use tun_offload::virtio::{FLAG_NEEDS_CSUM, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};
use tun_offload::wire::MAX_LINK_HEADER_LEN;
use tun_offload::{
    GroOptions, GroTable, Layer, OffloadError, UDP_MAX_SEGMENTS, VirtioNetHdr, gso_split_with_layer,
};

use super::batch::{canonical, coalesce_with, coalesce_with_layer, unpack};
use super::oracle::{check_headers_and_sums, names_tcp, parse_checked};
use super::packets::{self, Flags, Flow, HdrLen, Seg};
use super::reference;

/// Reads fuzz input as a sequence of small values; past the end everything reads as zero.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.data.split_at(n.min(self.data.len()));
        self.data = b;
        a
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// `decode` accepts exactly the inputs of at least 10 bytes and round-trips them through `encode`;
/// `encode` refuses buffers shorter than 10 bytes.
pub(crate) fn check_decode(data: &[u8]) {
    match VirtioNetHdr::decode(data) {
        Ok(h) => {
            assert!(
                data.len() >= VirtioNetHdr::LEN,
                "decoded a header from {} bytes",
                data.len()
            );
            assert_eq!(
                h.to_bytes()[..],
                data[..VirtioNetHdr::LEN],
                "to_bytes inverts decode"
            );
            let mut out = vec![0u8; data.len()];
            h.encode(&mut out)
                .expect("encode into a long enough buffer");
            assert_eq!(
                out[..VirtioNetHdr::LEN],
                data[..VirtioNetHdr::LEN],
                "encode inverts decode"
            );
            assert_eq!(
                out[VirtioNetHdr::LEN..],
                vec![0u8; data.len() - VirtioNetHdr::LEN][..],
                "encode writes 10 bytes only"
            );
            let short = usize::from(data[0]) % VirtioNetHdr::LEN;
            assert!(
                h.encode(&mut out[..short]).is_err(),
                "encode into {short} bytes must fail"
            );
        }
        Err(e) => {
            assert!(
                data.len() < VirtioNetHdr::LEN,
                "decode of {} bytes failed: {e}",
                data.len()
            );
            assert!(matches!(e, OffloadError::TooShort { .. }), "{e:?}");
        }
    }
}

/// Splits either raw bytes or a valid super-packet built from the input (optionally with a few bytes
/// overwritten), with buffers of fuzzed number and size. A valid, unmodified super-packet must split
/// into exactly the kernel's segments; anything else must give an error or well-formed packets whose
/// payloads are the input's.
pub(crate) fn check_gso_split(data: &[u8]) {
    let mut input = Input { data };
    let mode = input.u8();
    let offset_byte = input.u8();
    let offset = usize::from(offset_byte % 32);
    // The byte's top bits, which the offset leaves, say how many VLAN tags the same read has on L2.
    let tags = usize::from(offset_byte >> 5) % 3;
    let nbufs = usize::from(input.u8() % 64) + 1;
    let buf_len = usize::from(input.u16());
    let (read, exact) = if mode & 1 == 0 {
        (input.bytes(usize::MAX).to_vec(), None)
    } else {
        let flow = fuzz_flow(&mut input, mode >> 1 & 1 == 1, mode >> 2 & 1 == 1);
        let len = usize::from(input.u16()) % (flow.max_payload() + 1);
        let gso = input.u16().max(1);
        // GSO_ECN (CWR on the super-packet, kept on the first segment only) exists for TCP only.
        let ecn = mode & 0x80 != 0 && !flow.udp;
        let seg = Seg {
            seq: input.u32(),
            ip_id: input.u16(),
            flags: Flags {
                fin: mode & 0x40 != 0,
                ece: mode & 0x20 != 0,
                cwr: ecn,
                ..Flags::ACK_PSH
            },
        };
        let hdr_len = HdrLen::Bogus(input.u16());
        let payload = cached_payload(len, mode);
        let mut read = packets::super_packet(&flow, seg, &payload, gso, hdr_len, ecn);
        let mutations = usize::from(mode >> 3 & 3);
        for _ in 0..mutations {
            let at = usize::from(input.u16()) % read.len();
            read[at] = input.u8();
        }
        // The kernel's segments are built only once the split succeeded (at most 64 of them): a valid
        // super-packet with a small gso_size has thousands, and building them all for every input that
        // asks for too few buffers cost more than the rest of the check.
        let exact = (mutations == 0 && len > 0).then_some(Expected {
            flow,
            seg,
            payload,
            gso,
            ecn,
        });
        (read, exact)
    };
    let mut sizes = vec![0usize; nbufs];
    let mut work = read.clone();
    let (result, written) =
        split_into_pool(&mut work, Layer::L3, nbufs, buf_len, &mut sizes, offset);
    let got: Vec<Vec<u8>> = match &result {
        Ok(n) => {
            assert!(*n <= nbufs, "{n} packets into {nbufs} buffers");
            written
                .into_iter()
                .enumerate()
                .map(|(i, packet)| {
                    packet.unwrap_or_else(|| {
                        panic!("packet {i} of {} bytes overruns its buffer", sizes[i])
                    })
                })
                .collect()
        }
        Err(_) => Vec::new(),
    };
    check_l2_split(&read, tags, (nbufs, buf_len, offset), &result, &got);
    if let Some(e) = exact {
        let (count, longest) = packets::segments_shape(&e.flow, e.payload.len(), e.gso);
        let fits = count <= nbufs && offset + longest <= buf_len;
        match result {
            Ok(_) => {
                let want = packets::segments(&e.flow, e.seg, &e.payload, e.gso, e.ecn);
                assert_eq!(
                    (want.len(), want.iter().map(Vec::len).max().unwrap_or(0)),
                    (count, longest),
                    "segments_shape describes the segments"
                );
                assert!(
                    got == want,
                    "a valid super-packet must split into the kernel's segments"
                );
            }
            Err(
                OffloadError::BufferTooSmall { .. }
                | OffloadError::TooFewBuffers { .. }
                | OffloadError::InvalidArgument(_),
            ) if !fits => {}
            Err(e) => panic!("valid super-packet refused: {e:?} (fits: {fits})"),
        }
        return;
    }
    if result.is_ok() {
        check_split_output(&read, &got);
    }
}

/// The same read on a TAP device, its packet behind an Ethernet header with `tags` VLAN tags, split into
/// buffers each that header longer: it splits as the TUN read did (`l3`, whose packets are `l3_packets`),
/// each frame that header followed by the TUN read's packet, and fails where that failed.
fn check_l2_split(
    read: &[u8],
    tags: usize,
    (nbufs, buf_len, offset): (usize, usize, usize),
    l3: &Result<usize, OffloadError>,
    l3_packets: &[Vec<u8>],
) {
    let link = packets::link_header(tags, read.get(VirtioNetHdr::LEN..).unwrap_or_default());
    // A read without a packet or with offsets past 65535 has no TAP counterpart.
    let Some(mut framed) = packets::framed_read(read, &link) else {
        return;
    };
    let mut sizes = vec![0usize; nbufs];
    let (result, written) = split_into_pool(
        &mut framed,
        Layer::L2,
        nbufs,
        buf_len + link.len(),
        &mut sizes,
        offset,
    );
    match (l3, &result) {
        (Ok(n), Ok(m)) => {
            assert_eq!(n, m, "L2 split into as many frames as L3 packets");
            for (i, (frame, packet)) in written.iter().zip(l3_packets).enumerate() {
                let frame = frame.as_deref().expect("frames lie within their buffers");
                assert!(
                    frame.len() == link.len() + packet.len()
                        && frame[..link.len()] == link[..]
                        && frame[link.len()..] == packet[..],
                    "L2 frame {i} is not the Ethernet header and L3 packet {i}"
                );
            }
        }
        (Err(_), Err(_)) => {}
        (l3, l2) => panic!("L3 split {l3:?}, but L2 split {l2:?}"),
    }
}

/// A valid super-packet's parameters, from which the kernel's segments are built.
struct Expected {
    flow: Flow,
    seg: Seg,
    payload: Vec<u8>,
    gso: u16,
    ecn: bool,
}

/// `packets::payload(len, salt)`, cut from the longest payload of `salt` made so far on this thread: the
/// payloads of a salt extend one another, and generating 64 KB byte by byte for every input was a large part
/// of each run.
fn cached_payload(len: usize, salt: u8) -> Vec<u8> {
    thread_local! {
        static PAYLOADS: std::cell::RefCell<Vec<Vec<u8>>> =
            std::cell::RefCell::new(vec![Vec::new(); 256]);
    }
    PAYLOADS.with_borrow_mut(|payloads| {
        let longest = &mut payloads[usize::from(salt)];
        if longest.len() < len {
            *longest = packets::payload(len, u32::from(salt));
        }
        longest[..len].to_vec()
    })
}

/// Runs `gso_split` of `read` into `nbufs` zeroed buffers of `buf_len` bytes and returns its result and a
/// copy of each packet it reports writing (`None` for one that would overrun its buffer).
///
/// The buffers come from a per-thread pool kept zeroed between inputs: what a split wrote is zeroed again
/// once copied out. Allocating and zeroing up to 64 buffers of 64 KB for every input, most of which a
/// split never touches, was most of the work of a run.
fn split_into_pool(
    read: &mut [u8],
    layer: Layer,
    nbufs: usize,
    buf_len: usize,
    sizes: &mut [usize],
    offset: usize,
) -> (Result<usize, OffloadError>, Vec<Option<Vec<u8>>>) {
    /// As many buffers as a check asks for, as long as it asks (`u16` lengths).
    const POOL: usize = 64;
    const POOL_LEN: usize = u16::MAX as usize + MAX_LINK_HEADER_LEN;
    thread_local! {
        static BUFFERS: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    assert!(nbufs <= POOL && buf_len <= POOL_LEN, "pool too small");
    BUFFERS.with_borrow_mut(|pool| {
        if pool.is_empty() {
            *pool = vec![vec![0u8; POOL_LEN]; POOL];
        }
        let mut bufs: Vec<&mut [u8]> = pool
            .iter_mut()
            .take(nbufs)
            .map(|b| &mut b[..buf_len])
            .collect();
        let result = gso_split_with_layer(read, layer, &mut bufs, sizes, offset);
        let written = result.as_ref().map_or(0, |&n| n.min(nbufs));
        let copies = bufs
            .iter_mut()
            .zip(sizes.iter())
            .take(written)
            .map(|(buf, &size)| {
                let end = offset.saturating_add(size);
                let copy = buf.get(offset..end).map(<[u8]>::to_vec);
                let dirty = offset.min(buf.len())..end.min(buf.len());
                buf[dirty].fill(0);
                copy
            })
            .collect();
        (result, copies)
    })
}

/// What any accepted split must satisfy: for a segmenting GSO type with NEEDS_CSUM, every packet is
/// well formed and the payloads concatenate to the input's payload.
fn check_split_output(read: &[u8], got: &[Vec<u8>]) {
    let Ok(hdr) = VirtioNetHdr::decode(read) else {
        panic!("split accepted a read without a virtio header")
    };
    let kind = hdr.gso_kind();
    if kind == GSO_NONE {
        check_whole_packet(&hdr, &read[VirtioNetHdr::LEN..], got);
        return;
    }
    if hdr.flags & FLAG_NEEDS_CSUM == 0 || !matches!(kind, GSO_TCPV4 | GSO_TCPV6 | GSO_UDP_L4) {
        return;
    }
    let mut joined = Vec::new();
    for (i, p) in got.iter().enumerate() {
        let parsed =
            parse_checked(p).unwrap_or_else(|e| panic!("segment {i} of an accepted split: {e}"));
        joined.extend_from_slice(&parsed.payload);
    }
    let pkt = &read[VirtioNetHdr::LEN..];
    let first = parse_checked(got.first().expect("a split gives at least one packet"))
        .expect("checked above");
    let start = first.ip_header_len + first.l4_header_len;
    assert!(
        pkt.len() >= start + joined.len(),
        "more payload out than in"
    );
    assert!(
        joined[..] == pkt[start..start + joined.len()],
        "payloads concatenate to the input's"
    );
    let ip_len = if first.v6 {
        40 + usize::from(u16::from_be_bytes([pkt[4], pkt[5]]))
    } else {
        usize::from(u16::from_be_bytes([pkt[2], pkt[3]]))
    };
    assert_eq!(
        start + joined.len(),
        ip_len,
        "every payload byte the IP length covers comes out once"
    );
}

/// GSO_NONE: one packet, the input itself; with NEEDS_CSUM, only the checksum field differs and it
/// completes the seed: the seed plus the sum from `csum_start` on, new field included, folds to 0xffff
/// (checked when the field sits on a 16-bit boundary from `csum_start`, as it always does in practice).
fn check_whole_packet(hdr: &VirtioNetHdr, pkt: &[u8], got: &[Vec<u8>]) {
    assert_eq!(got.len(), 1, "GSO_NONE gives one packet");
    let out = &got[0];
    assert_eq!(out.len(), pkt.len(), "GSO_NONE keeps the packet's length");
    if hdr.flags & FLAG_NEEDS_CSUM == 0 {
        assert!(
            out == pkt,
            "GSO_NONE without NEEDS_CSUM passes the packet through unchanged"
        );
        return;
    }
    let start = usize::from(hdr.csum_start);
    let field = start + usize::from(hdr.csum_offset);
    assert!(
        field + 2 <= pkt.len(),
        "accepted a checksum field beyond the packet"
    );
    assert!(
        out[..field] == pkt[..field] && out[field + 2..] == pkt[field + 2..],
        "only the checksum field changes"
    );
    if hdr.csum_offset.is_multiple_of(2) {
        let seed = u64::from(u16::from_be_bytes([pkt[field], pkt[field + 1]]));
        assert_eq!(
            reference::fold(seed + reference::sum(&out[start..])),
            0xffff,
            "the finished checksum completes the seed"
        );
    }
}

/// A flow whose fields come from the fuzz input (addresses fixed, so that few inputs reach the
/// interesting cases).
fn fuzz_flow(input: &mut Input<'_>, v6: bool, udp: bool) -> Flow {
    let mut f = Flow::simple(v6, udp);
    let b = input.u8();
    f.tos = if b & 1 != 0 { input.u8() } else { 0 };
    f.ttl = if b & 2 != 0 { input.u8() } else { 64 };
    f.df = !v6 && b & 4 == 0;
    f.ack = if b & 8 != 0 { input.u32() } else { 1 };
    if udp {
        f.options.clear();
    } else {
        let words = usize::from(b >> 4) % 11;
        f.options = if words == 3 {
            packets::timestamps(input.u32(), 0)
        } else {
            input.bytes(words * 4).to_vec()
        };
        f.options.resize(words * 4, 1);
    }
    f
}

/// Builds a write batch from the input (TCP and UDP packets of a few flows with fuzzed sequence numbers,
/// lengths, flags, header fields and checksums, plus raw byte strings) and checks `handle_gro`: it
/// succeeds, writes each buffer at most once, and what it writes splits back into exactly the packets
/// it was given (IPv4 IDs aside); coalesced packets carry a correct virtio header and seed, never more
/// than 65535 bytes; UDP datagrams of a flow keep their order.
pub(crate) fn check_handle_gro(data: &[u8]) {
    let mut input = Input { data };
    let head = input.u8();
    let offset = VirtioNetHdr::LEN + usize::from(head & 7);
    // The top bits, free in the first byte, say how many VLAN tags the same batch has on L2.
    let tags = usize::from(head >> 5) % 3;
    let options = GroOptions {
        tcp: head & 0x10 == 0,
        udp: head & 8 != 0,
    };
    let gso = usize::from(input.u16() % 1500) + 1;
    let base_seq = input.u32();
    let mut pkts: Vec<Vec<u8>> = Vec::new();
    while !input.is_empty() && pkts.len() < 128 {
        let kind = input.u8();
        if kind & 0xe0 == 0xe0 {
            let len = usize::from(input.u8()) * 4;
            pkts.push(input.bytes(len).to_vec());
            continue;
        }
        let (v6, udp) = (kind & 1 != 0, kind & 2 != 0);
        let mut flow = Flow::simple(v6, udp);
        flow.sport += u16::from(kind >> 2 & 1);
        let vary = input.u8();
        if vary & 1 != 0 {
            flow.ttl ^= 1;
        }
        if vary & 2 != 0 {
            flow.tos ^= 4;
        }
        if vary & 4 != 0 && !v6 {
            flow.df = false;
        }
        if vary & 8 != 0 {
            flow.ack += 1;
        }
        if vary & 16 != 0 && !udp {
            flow.options = packets::timestamps(1, 3);
        }
        if vary & 32 != 0 && !udp {
            flow.options.clear();
        }
        let index = input.u8();
        let seq = base_seq
            .wrapping_add((usize::from(index & 0x7f) * gso) as u32)
            .wrapping_add(u32::from(index >> 7));
        let len_sel = input.u8();
        let len = match len_sel & 3 {
            0 | 1 => gso,
            2 => usize::from(len_sel >> 2) % gso,
            _ => usize::from(input.u16()) % 1600,
        }
        .min(flow.max_payload());
        let flags_sel = input.u8();
        let flags = match flags_sel & 3 {
            0 | 1 => Flags::ACK,
            2 => Flags::ACK_PSH,
            _ => Flags::from_bits(input.u8()),
        };
        let seg = Seg {
            seq,
            ip_id: u16::from(index),
            flags,
        };
        let mut p = packets::packet(&flow, seg, &cached_payload(len, index & 0x7f));
        if flags_sel & 4 != 0 {
            let at = usize::from(input.u16()) % p.len();
            p[at] ^= input.u8() | 1;
        }
        pkts.push(p);
    }
    let out = coalesce_with(&pkts, offset, &mut GroTable::new(), options)
        .unwrap_or_else(|e| panic!("handle_gro: {e}"));
    let mut seen = vec![false; pkts.len()];
    let mut back: Vec<(usize, Vec<u8>)> = Vec::new();
    for (idx, wire) in &out {
        assert!(
            *idx < pkts.len(),
            "index {idx} out of a batch of {}",
            pkts.len()
        );
        assert!(
            !std::mem::replace(&mut seen[*idx], true),
            "buffer {idx} written twice"
        );
        let hdr = VirtioNetHdr::decode(wire).expect("ten bytes of header");
        if hdr == VirtioNetHdr::default() {
            assert!(
                wire[VirtioNetHdr::LEN..] == pkts[*idx][..],
                "buffer {idx} passed through but changed"
            );
        }
        let parts = unpack(wire).unwrap_or_else(|e| panic!("buffer {idx}: {e}"));
        let coalesced_on = match hdr.gso_type {
            GSO_NONE => true,
            GSO_TCPV4 | GSO_TCPV6 => options.tcp,
            _ => options.udp,
        };
        assert!(
            coalesced_on,
            "buffer {idx}: coalesced with that protocol off"
        );
        if hdr.gso_type == GSO_UDP_L4 {
            assert!(
                parts.len() <= UDP_MAX_SEGMENTS,
                "buffer {idx}: {} datagrams in one packet",
                parts.len()
            );
        }
        back.extend(parts.into_iter().map(|p| (*idx, p)));
    }
    let mut want: Vec<Vec<u8>> = pkts.iter().map(|p| canonical(p)).collect();
    let mut got: Vec<Vec<u8>> = back.iter().map(|(_, p)| canonical(p)).collect();
    want.sort();
    got.sort();
    assert!(
        got == want,
        "what is written is not what was given ({} packets in, {} out)",
        want.len(),
        got.len()
    );
    check_udp_order(&pkts, &back);
    check_l2_gro(&pkts, tags, offset, options, &out);
}

/// The same batch on a TAP device, each packet behind an Ethernet header with `tags` VLAN tags and the
/// EtherType of its IP version, coalesces as the TUN batch did (`l3`): the same frames of the same buffers,
/// each the Ethernet header in front of the TUN frame's packet, a GSO header's offsets counting from it.
fn check_l2_gro(
    pkts: &[Vec<u8>],
    tags: usize,
    offset: usize,
    options: GroOptions,
    l3: &[(usize, Vec<u8>)],
) {
    let links: Vec<Vec<u8>> = pkts.iter().map(|p| packets::link_header(tags, p)).collect();
    let frames: Vec<Vec<u8>> = pkts
        .iter()
        .zip(&links)
        .map(|(p, link)| [&link[..], p].concat())
        .collect();
    let l2 = coalesce_with_layer(&frames, offset, &mut GroTable::new(), options, Layer::L2)
        .unwrap_or_else(|e| panic!("handle_gro on L2: {e}"));
    assert_eq!(l2.len(), l3.len(), "L2 writes as many frames as L3");
    for ((idx2, wire2), (idx3, wire3)) in l2.iter().zip(l3) {
        assert_eq!(idx2, idx3, "L2 frames in the buffers of the L3 ones");
        assert!(
            *wire2 == packets::framed_wire(wire3, &links[*idx3]),
            "L2 frame of buffer {idx2} is not the L3 one with its Ethernet header"
        );
    }
}

/// Well-formed UDP datagrams of one 4-tuple come out (in the order of the writes, then position in a
/// coalesced packet) in the order they went in.
fn check_udp_order(pkts: &[Vec<u8>], back: &[(usize, Vec<u8>)]) {
    // Every well-formed datagram (valid checksums, not a fragment), candidate or not: one written on
    // its own keeps its place too.
    fn udp_key(p: &[u8]) -> Option<Vec<u8>> {
        // Half the packets are TCP: one byte tells, before the full check parses and sums them.
        if names_tcp(p) {
            return None;
        }
        let parsed = check_headers_and_sums(p).ok()?;
        parsed.udp.then(|| {
            [
                parsed.src,
                parsed.dst,
                parsed.sport.to_be_bytes().to_vec(),
                parsed.dport.to_be_bytes().to_vec(),
            ]
            .concat()
        })
    }
    let ins: Vec<(Vec<u8>, Vec<u8>)> = pkts
        .iter()
        .filter_map(|p| Some((udp_key(p)?, canonical(p))))
        .collect();
    let outs: Vec<(Vec<u8>, Vec<u8>)> = back
        .iter()
        .filter_map(|(_, p)| Some((udp_key(p)?, canonical(p))))
        .collect();
    let mut keys: Vec<&Vec<u8>> = ins.iter().map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let a: Vec<&Vec<u8>> = ins
            .iter()
            .filter(|(kk, _)| kk == k)
            .map(|(_, p)| p)
            .collect();
        let b: Vec<&Vec<u8>> = outs
            .iter()
            .filter(|(kk, _)| kk == k)
            .map(|(_, p)| p)
            .collect();
        assert!(a == b, "UDP datagrams of one flow reordered");
    }
}
