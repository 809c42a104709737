//! G.711 A-law and mu-law (ITU-T G.711), table driven.
//!
//! Decoding is one lookup in a 256-entry table; encoding one lookup in a
//! 16384-entry (mu-law, 14-bit input) or 8192-entry (A-law, 13-bit input)
//! table. The tables are built at compile time, so nothing allocates per packet.

const SEG_UEND: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
const SEG_AEND: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
const BIAS: i32 = 0x84;
const CLIP: i32 = 8159;

const fn seg_search(v: i32, table: &[i32; 8]) -> usize {
    let mut i = 0;
    while i < 8 {
        if v <= table[i] {
            return i;
        }
        i += 1;
    }
    8
}

/// mu-law encode of a 14-bit sample (the 16-bit sample shifted right by 2).
const fn ulaw_encode14(pcm14: i32) -> u8 {
    let (mut v, mask) = if pcm14 < 0 {
        (-pcm14, 0x7F)
    } else {
        (pcm14, 0xFF)
    };
    if v > CLIP {
        v = CLIP;
    }
    v += BIAS >> 2;
    let seg = seg_search(v, &SEG_UEND);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let uval = ((seg as i32) << 4) | ((v >> (seg + 1)) & 0xF);
    (uval ^ mask) as u8
}

/// A-law encode of a 13-bit sample (the 16-bit sample shifted right by 3).
const fn alaw_encode13(pcm13: i32) -> u8 {
    let (v, mask) = if pcm13 >= 0 {
        (pcm13, 0xD5)
    } else {
        (-pcm13 - 1, 0x55)
    };
    let seg = seg_search(v, &SEG_AEND);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let mut aval = (seg as i32) << 4;
    if seg < 2 {
        aval |= (v >> 1) & 0xF;
    } else {
        aval |= (v >> seg) & 0xF;
    }
    (aval ^ mask) as u8
}

const fn ulaw_decode(u: u8) -> i16 {
    let u = !u as i32;
    let mut t = ((u & 0x0F) << 3) + BIAS;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { BIAS - t } else { t - BIAS }) as i16
}

const fn alaw_decode(a: u8) -> i16 {
    let a = (a ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

const fn build_ulaw_dec() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_decode(i as u8);
        i += 1;
    }
    t
}
const fn build_alaw_dec() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_decode(i as u8);
        i += 1;
    }
    t
}
const fn build_ulaw_enc() -> [u8; 16384] {
    let mut t = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        // index = (sample >> 2) as u14, sign-extended back
        let s = ((i as i32) << 18) >> 18;
        t[i] = ulaw_encode14(s);
        i += 1;
    }
    t
}
const fn build_alaw_enc() -> [u8; 8192] {
    let mut t = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        let s = ((i as i32) << 19) >> 19;
        t[i] = alaw_encode13(s);
        i += 1;
    }
    t
}

static ULAW_DEC: [i16; 256] = build_ulaw_dec();
static ALAW_DEC: [i16; 256] = build_alaw_dec();
static ULAW_ENC: [u8; 16384] = build_ulaw_enc();
static ALAW_ENC: [u8; 8192] = build_alaw_enc();

/// Encodes one sample to mu-law (PCMU).
#[inline]
pub fn ulaw_from_linear(s: i16) -> u8 {
    ULAW_ENC[((s >> 2) as u16 & 0x3FFF) as usize]
}
/// Decodes one mu-law (PCMU) byte.
#[inline]
pub fn ulaw_to_linear(u: u8) -> i16 {
    ULAW_DEC[u as usize]
}
/// Encodes one sample to A-law (PCMA).
#[inline]
pub fn alaw_from_linear(s: i16) -> u8 {
    ALAW_ENC[((s >> 3) as u16 & 0x1FFF) as usize]
}
/// Decodes one A-law (PCMA) byte.
#[inline]
pub fn alaw_to_linear(a: u8) -> i16 {
    ALAW_DEC[a as usize]
}

/// Encodes samples into `out` (one byte per sample); returns bytes written
/// (the shorter of the two lengths).
pub fn encode_ulaw(pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    for (o, s) in out[..n].iter_mut().zip(&pcm[..n]) {
        *o = ulaw_from_linear(*s);
    }
    n
}
/// Decodes mu-law bytes into `out`; returns samples written.
pub fn decode_ulaw(data: &[u8], out: &mut [i16]) -> usize {
    let n = data.len().min(out.len());
    for (o, b) in out[..n].iter_mut().zip(&data[..n]) {
        *o = ulaw_to_linear(*b);
    }
    n
}
/// Encodes samples to A-law into `out`; returns bytes written.
pub fn encode_alaw(pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    for (o, s) in out[..n].iter_mut().zip(&pcm[..n]) {
        *o = alaw_from_linear(*s);
    }
    n
}
/// Decodes A-law bytes into `out`; returns samples written.
pub fn decode_alaw(data: &[u8], out: &mut [i16]) -> usize {
    let n = data.len().min(out.len());
    for (o, b) in out[..n].iter_mut().zip(&data[..n]) {
        *o = alaw_to_linear(*b);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snr_db(a: &[i16], b: &[i16]) -> f64 {
        let sig: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum();
        let err: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum();
        10.0 * (sig / err.max(1e-9)).log10()
    }

    #[test]
    fn known_code_points_match_g711() {
        // Silence codes trunks send, and the extreme code points of the G.711 tables.
        assert_eq!(ulaw_from_linear(0), 0xFF);
        assert_eq!(alaw_from_linear(0), 0xD5);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(ulaw_from_linear(i16::MAX), 0x80);
        assert_eq!(ulaw_from_linear(i16::MIN), 0x00);
        assert_eq!(alaw_from_linear(i16::MAX), 0xAA);
        assert_eq!(alaw_from_linear(i16::MIN), 0x2A);
    }

    #[test]
    fn every_code_decodes_and_reencodes_to_itself() {
        // G.711 is idempotent on its own output: decode(c) re-encodes to c
        // (except mu-law's negative zero 0x7F, which is the same level as 0xFF).
        for c in 0..=255u8 {
            let u = ulaw_from_linear(ulaw_to_linear(c));
            assert!(u == c || (c == 0x7F && u == 0xFF), "ulaw {c:#x} -> {u:#x}");
            assert_eq!(alaw_from_linear(alaw_to_linear(c)), c, "alaw {c:#x}");
        }
    }

    #[test]
    fn sine_round_trip_snr_is_toll_quality() {
        let pcm: Vec<i16> = (0..8000)
            .map(|i| {
                (10000.0 * (i as f64 * 2.0 * std::f64::consts::PI * 1004.0 / 8000.0).sin()) as i16
            })
            .collect();
        let mut enc = vec![0u8; pcm.len()];
        let mut dec = vec![0i16; pcm.len()];
        encode_ulaw(&pcm, &mut enc);
        decode_ulaw(&enc, &mut dec);
        let u = snr_db(&pcm, &dec);
        encode_alaw(&pcm, &mut enc);
        decode_alaw(&enc, &mut dec);
        let a = snr_db(&pcm, &dec);
        // G.711 gives ~38 dB SNR for a mid-level tone.
        assert!(u > 35.0 && a > 35.0, "ulaw {u:.1} dB, alaw {a:.1} dB");
    }
}
