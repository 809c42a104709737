//! RTCP sender and receiver reports (RFC 3550 sec. 6.4) and compound packets (sec. 6.1).
//!
//! Parsing walks a compound packet and never panics: every length is checked
//! against the datagram before it is read. Building writes SR or RR + SDES CNAME
//! (a compound packet must start with SR/RR and carry a CNAME, sec. 6.1) into a
//! caller-provided buffer.

use crate::MediaError;

/// RTCP packet type: sender report.
pub const PT_SR: u8 = 200;
/// RTCP packet type: receiver report.
pub const PT_RR: u8 = 201;
/// RTCP packet type: source description.
pub const PT_SDES: u8 = 202;
/// RTCP packet type: goodbye.
pub const PT_BYE: u8 = 203;

/// One reception report block (RFC 3550 sec. 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub ext_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received (LSR).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s (DLSR).
    pub delay_since_last_sr: u32,
}

/// Sender information of an SR (RFC 3550 sec. 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// NTP timestamp (64 bit, seconds since 1900 in the upper half).
    pub ntp: u64,
    /// RTP timestamp corresponding to `ntp`.
    pub rtp_ts: u32,
    /// Packets sent.
    pub packets: u32,
    /// Payload octets sent.
    pub octets: u32,
}

/// What one compound RTCP packet told us. Fixed capacity: at most
/// [`MAX_BLOCKS`] report blocks are kept (we only care about the one about us).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtcpInfo {
    /// SSRC of the sender of the SR/RR.
    pub sender_ssrc: Option<u32>,
    /// Sender info, if the compound held an SR.
    pub sender_info: Option<SenderInfo>,
    /// Report blocks (first `block_count` valid).
    pub blocks: [ReportBlock; MAX_BLOCKS],
    /// Number of valid entries in `blocks`.
    pub block_count: usize,
    /// The compound held a BYE.
    pub bye: bool,
}

/// Report blocks kept per compound packet.
pub const MAX_BLOCKS: usize = 4;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parses a compound RTCP packet (RFC 3550 sec. 6.1, 6.4). Never panics.
pub fn parse_rtcp(bytes: &[u8]) -> Result<RtcpInfo, MediaError> {
    let mut info = RtcpInfo::default();
    let mut off = 0usize;
    if bytes.len() < 4 {
        return Err(MediaError::MalformedRtcp("shorter than one header"));
    }
    while off < bytes.len() {
        let hdr = bytes
            .get(off..off + 4)
            .ok_or(MediaError::MalformedRtcp("truncated header"))?;
        if hdr[0] >> 6 != 2 {
            return Err(MediaError::MalformedRtcp("version is not 2"));
        }
        let count = usize::from(hdr[0] & 0x1F);
        let pt = hdr[1];
        let len = (usize::from(u16::from_be_bytes([hdr[2], hdr[3]])) + 1) * 4;
        let pkt = bytes
            .get(off..off + len)
            .ok_or(MediaError::MalformedRtcp("length beyond datagram"))?;
        if off == 0 && pt != PT_SR && pt != PT_RR {
            return Err(MediaError::MalformedRtcp(
                "compound does not start with SR or RR",
            ));
        }
        match pt {
            PT_SR | PT_RR => {
                let ssrc = be32(pkt, 4).ok_or(MediaError::MalformedRtcp("report without SSRC"))?;
                info.sender_ssrc = Some(ssrc);
                let mut at = 8;
                if pt == PT_SR {
                    let hi =
                        be32(pkt, 8).ok_or(MediaError::MalformedRtcp("truncated sender info"))?;
                    let lo =
                        be32(pkt, 12).ok_or(MediaError::MalformedRtcp("truncated sender info"))?;
                    info.sender_info = Some(SenderInfo {
                        ntp: (u64::from(hi) << 32) | u64::from(lo),
                        rtp_ts: be32(pkt, 16)
                            .ok_or(MediaError::MalformedRtcp("truncated sender info"))?,
                        packets: be32(pkt, 20)
                            .ok_or(MediaError::MalformedRtcp("truncated sender info"))?,
                        octets: be32(pkt, 24)
                            .ok_or(MediaError::MalformedRtcp("truncated sender info"))?,
                    });
                    at = 28;
                }
                for _ in 0..count {
                    let b = pkt
                        .get(at..at + 24)
                        .ok_or(MediaError::MalformedRtcp("truncated report block"))?;
                    let lost_raw = u32::from_be_bytes([0, b[5], b[6], b[7]]);
                    // Sign-extend the 24-bit cumulative loss.
                    let cumulative_lost = ((lost_raw << 8) as i32) >> 8;
                    let block = ReportBlock {
                        ssrc: be32(b, 0).unwrap_or(0),
                        fraction_lost: b[4],
                        cumulative_lost,
                        ext_highest_seq: be32(b, 8).unwrap_or(0),
                        jitter: be32(b, 12).unwrap_or(0),
                        last_sr: be32(b, 16).unwrap_or(0),
                        delay_since_last_sr: be32(b, 20).unwrap_or(0),
                    };
                    if info.block_count < MAX_BLOCKS {
                        info.blocks[info.block_count] = block;
                        info.block_count += 1;
                    }
                    at += 24;
                }
            }
            PT_BYE => info.bye = true,
            _ => {} // SDES, APP, feedback: skipped by length.
        }
        off += len;
    }
    Ok(info)
}

/// Writes an SR (if `sender` is given) or RR with at most one report block,
/// followed by an SDES CNAME chunk. Returns bytes written.
pub fn build_report(
    out: &mut [u8],
    ssrc: u32,
    sender: Option<SenderInfo>,
    block: Option<ReportBlock>,
    cname: &[u8],
) -> Result<usize, MediaError> {
    let cname = &cname[..cname.len().min(255)];
    let rc = u8::from(block.is_some());
    let report_len = 8 + if sender.is_some() { 20 } else { 0 } + 24 * usize::from(rc);
    // SDES: header 4 + SSRC 4 + item (2 + len) + end 1, padded to 4.
    let sdes_len = (4 + 4 + 2 + cname.len() + 1).div_ceil(4) * 4;
    let total = report_len + sdes_len;
    let avail = out.len();
    let out = out
        .get_mut(..total)
        .ok_or(MediaError::PayloadTooLarge(total, avail))?;
    out.fill(0);
    out[0] = 0x80 | rc;
    out[1] = if sender.is_some() { PT_SR } else { PT_RR };
    out[2..4].copy_from_slice(&((report_len / 4 - 1) as u16).to_be_bytes());
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    let mut at = 8;
    if let Some(s) = sender {
        out[8..16].copy_from_slice(&s.ntp.to_be_bytes());
        out[16..20].copy_from_slice(&s.rtp_ts.to_be_bytes());
        out[20..24].copy_from_slice(&s.packets.to_be_bytes());
        out[24..28].copy_from_slice(&s.octets.to_be_bytes());
        at = 28;
    }
    if let Some(b) = block {
        out[at..at + 4].copy_from_slice(&b.ssrc.to_be_bytes());
        let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
        out[at + 4..at + 8]
            .copy_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
        out[at + 8..at + 12].copy_from_slice(&b.ext_highest_seq.to_be_bytes());
        out[at + 12..at + 16].copy_from_slice(&b.jitter.to_be_bytes());
        out[at + 16..at + 20].copy_from_slice(&b.last_sr.to_be_bytes());
        out[at + 20..at + 24].copy_from_slice(&b.delay_since_last_sr.to_be_bytes());
        at += 24;
    }
    let s = &mut out[at..];
    s[0] = 0x81;
    s[1] = PT_SDES;
    s[2..4].copy_from_slice(&((sdes_len / 4 - 1) as u16).to_be_bytes());
    s[4..8].copy_from_slice(&ssrc.to_be_bytes());
    s[8] = 1; // CNAME
    s[9] = cname.len() as u8;
    s[10..10 + cname.len()].copy_from_slice(cname);
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_report_round_trips_with_negative_loss_and_cname() {
        let mut buf = [0u8; 256];
        let sr = SenderInfo {
            ntp: 0x0102_0304_0506_0708,
            rtp_ts: 160,
            packets: 10,
            octets: 1600,
        };
        let block = ReportBlock {
            ssrc: 7,
            fraction_lost: 25,
            cumulative_lost: -3,
            ext_highest_seq: 65537,
            jitter: 80,
            last_sr: 0x0304_0506,
            delay_since_last_sr: 65536,
        };
        let n = build_report(&mut buf, 42, Some(sr), Some(block), b"ivr@example").unwrap();
        assert_eq!(n % 4, 0);
        let info = parse_rtcp(&buf[..n]).unwrap();
        assert_eq!(info.sender_ssrc, Some(42));
        assert_eq!(info.sender_info, Some(sr));
        assert_eq!(info.block_count, 1);
        assert_eq!(info.blocks[0], block);
    }

    #[test]
    fn receiver_report_without_blocks_parses() {
        let mut buf = [0u8; 64];
        let n = build_report(&mut buf, 9, None, None, b"x").unwrap();
        let info = parse_rtcp(&buf[..n]).unwrap();
        assert_eq!(
            (info.sender_ssrc, info.sender_info, info.block_count),
            (Some(9), None, 0)
        );
    }

    #[test]
    fn truncated_and_lying_lengths_are_errors_not_panics() {
        let mut buf = [0u8; 128];
        let n = build_report(
            &mut buf,
            1,
            Some(SenderInfo::default()),
            Some(ReportBlock::default()),
            b"c",
        )
        .unwrap();
        for cut in 0..n {
            let _ = parse_rtcp(&buf[..cut]);
        }
        buf[0] = 0x9F; // claims 31 report blocks
        assert!(parse_rtcp(&buf[..n]).is_err());
    }
}
