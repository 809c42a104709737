//! Feeds the RFC 2833 DTMF captures shipped with sip-tester (sipp) through the
//! RTP parser and the RFC 4733 receiver: each file must give exactly its key
//! once, despite the three retransmitted end packets they contain.

use ivr_core::Dtmf;
use ivr_media::rfc4733::DtmfReceiver;
use ivr_media::rtp::parse_rtp;

const DIR: &str = "/usr/share/sip-tester";

/// Minimal classic-pcap reader (little-endian, Ethernet/IPv4/UDP): returns UDP payloads.
fn udp_payloads(path: &str) -> Vec<Vec<u8>> {
    let d = std::fs::read(path)
        .unwrap_or_else(|e| panic!("{path}: {e}: install sip-tester (make setup)"));
    assert_eq!(&d[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let mut off = 24;
    let mut out = Vec::new();
    while off + 16 <= d.len() {
        let incl = u32::from_le_bytes([d[off + 8], d[off + 9], d[off + 10], d[off + 11]]) as usize;
        off += 16;
        let pkt = &d[off..off + incl];
        off += incl;
        let ihl = usize::from(pkt[14] & 0x0F) * 4;
        out.push(pkt[14 + ihl + 8..].to_vec());
    }
    out
}

#[test]
fn every_sipp_rfc2833_capture_yields_its_key_exactly_once() {
    let cases = [
        ("0", Dtmf::D0),
        ("1", Dtmf::D1),
        ("2", Dtmf::D2),
        ("3", Dtmf::D3),
        ("4", Dtmf::D4),
        ("5", Dtmf::D5),
        ("6", Dtmf::D6),
        ("7", Dtmf::D7),
        ("8", Dtmf::D8),
        ("9", Dtmf::D9),
        ("pound", Dtmf::Hash),
        ("star", Dtmf::Star),
    ];
    for (name, key) in cases {
        let path = format!("{DIR}/dtmf_2833_{name}.pcap");
        let mut rx = DtmfReceiver::new();
        let mut got = Vec::new();
        let mut ends = 0;
        for dgram in udp_payloads(&path) {
            let p = parse_rtp(&dgram).expect("valid RTP in capture");
            assert_eq!(p.payload_type, 101);
            if p.payload.get(1).is_some_and(|b| b & 0x80 != 0) {
                ends += 1;
            }
            got.extend(rx.handle(p.timestamp, p.payload).unwrap());
        }
        assert_eq!(
            ends, 3,
            "{name}: capture holds the 3 retransmitted end packets"
        );
        assert_eq!(got, [key], "{name}");
    }
}

#[test]
fn all_twelve_captures_played_back_to_back_give_the_whole_sequence() {
    // Concatenate the captures as one call (each capture's event has its own timestamp
    // offset so the receiver sees twelve distinct events), with the packets of each
    // event reordered (end packets first): still one key each, in order.
    let names = [
        "1", "2", "3", "4", "5", "6", "7", "8", "9", "star", "0", "pound",
    ];
    let mut rx = DtmfReceiver::new();
    let mut got = String::new();
    for (i, name) in names.iter().enumerate() {
        let mut pkts = udp_payloads(&format!("{DIR}/dtmf_2833_{name}.pcap"));
        pkts.reverse();
        for dgram in pkts {
            let p = parse_rtp(&dgram).unwrap();
            if let Some(k) = rx
                .handle(p.timestamp.wrapping_add(i as u32 * 8000), p.payload)
                .unwrap()
            {
                got.push(k.as_char());
            }
        }
    }
    assert_eq!(got, "123456789*0#");
}
