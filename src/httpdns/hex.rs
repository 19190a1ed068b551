//! Lowercase hex, as the SDKs send keys, ciphertexts and signatures: every DNSPod cipher
//! answer and every v2 signature goes through here, so both directions work by table on
//! bytes (no `char` conversions, one allocation).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub(super) fn encode(bytes: &[u8]) -> String {
    let mut text = vec![0u8; bytes.len() * 2];
    for (pair, &b) in text.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
    // Only ASCII digits were written.
    String::from_utf8(text).unwrap_or_default()
}

/// The bytes of `text`, hex of either case; None when its length is odd or any character is
/// not a hex digit.
pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let bytes = decode_prefix(text);
    (bytes.len() * 2 == text.len()).then_some(bytes)
}

/// The bytes of the pairs of hex digits `text` starts with, up to the first pair that is not
/// one (Node's `Buffer.from(text, "hex")`, which the Alibaba SDKs key their signatures with).
pub(super) fn decode_prefix(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len() / 2);
    for pair in text.as_bytes().chunks_exact(2) {
        let (high, low) = (VALUES[usize::from(pair[0])], VALUES[usize::from(pair[1])]);
        if (high | low) & INVALID != 0 {
            break;
        }
        bytes.push(high << 4 | low);
    }
    bytes
}

/// Marks a byte that is not a hex digit in `VALUES`; no digit's value has any of its bits.
const INVALID: u8 = 0xf0;

/// Each byte's value as a hex digit, `INVALID` for the others.
const VALUES: [u8; 256] = {
    let mut values = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        values[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        values[b'a' as usize + i] = 10 + i as u8;
        values[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    values
};

#[cfg(test)]
mod tests {
    use super::{decode, decode_prefix, encode};

    #[test]
    fn round_trips_and_refuses_what_is_not_hex() {
        assert_eq!(encode(&[0, 0xab, 0xff, 0x10]), "00abff10");
        assert_eq!(decode("00abFF10"), Some(vec![0, 0xab, 0xff, 0x10]));
        assert_eq!(decode(""), Some(vec![]));
        assert_eq!(decode("abc"), None);
        assert_eq!(decode("zz"), None);
        assert_eq!(decode("00g0"), None);
    }

    #[test]
    fn a_prefix_stops_at_the_first_pair_that_is_not_hex() {
        assert_eq!(decode_prefix("00ff10"), [0, 255, 16]);
        assert_eq!(decode_prefix("0aXb12"), [10]);
        assert_eq!(decode_prefix("abc"), [0xab]);
        assert!(decode_prefix("zz").is_empty());
    }
}
