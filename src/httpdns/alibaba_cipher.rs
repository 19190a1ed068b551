//! The encrypted modes of Alibaba Cloud's HTTPDNS v2, as its SDKs speak them (the Android
//! SDK's `AESEncryptService`): `m=1` AES-CBC with PKCS#7 padding and a 16-byte IV, `m=2`
//! AES-GCM with a 12-byte nonce and a 16-byte tag, keyed with the account's `aes_key`.
//! A request's parameters travel as JSON in `enc`, hex of IV (or nonce) then ciphertext; the
//! answer's `data` is the same JSON it would be in plain mode, encrypted the same way with a
//! fresh IV, in base64.

use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

use super::dnspod_cipher::{aes_decrypt as cbc_decrypt, aes_encrypt as cbc_encrypt};
use super::hex;

/// The v2 `m` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Plain,
    Cbc,
    Gcm,
}

impl Mode {
    /// `m=0`, `1` or `2` (absent: plain); None for anything else.
    pub(super) fn parse(m: Option<&str>) -> Option<Mode> {
        match m {
            None | Some("0") => Some(Mode::Plain),
            Some("1") => Some(Mode::Cbc),
            Some("2") => Some(Mode::Gcm),
            _ => None,
        }
    }

    /// The number the answer's `mode` says.
    pub(super) fn number(self) -> u8 {
        match self {
            Mode::Plain => 0,
            Mode::Cbc => 1,
            Mode::Gcm => 2,
        }
    }

    fn iv_len(self) -> usize {
        match self {
            Mode::Gcm => 12,
            _ => 16,
        }
    }

    /// The plaintext of `enc` (hex of IV and ciphertext); None when it is not hex or does
    /// not decrypt with `key`.
    pub(super) fn decrypt_hex(self, key: &[u8], enc: &str) -> Option<Vec<u8>> {
        let bytes = hex::decode(enc)?;
        let (iv, data) = bytes.split_at_checked(self.iv_len())?;
        match self {
            Mode::Plain => None,
            Mode::Cbc => cbc_decrypt(key, iv, data),
            Mode::Gcm => gcm(key, |cipher| {
                cipher.decrypt(aes_gcm::Nonce::from_slice(iv), data).ok()
            }),
        }
    }

    /// `plain` encrypted with a fresh IV, as base64 of IV and ciphertext.
    pub(super) fn encrypt_base64(self, key: &[u8], plain: &[u8]) -> Option<String> {
        let mut iv = vec![0u8; self.iv_len()];
        rand::rng().fill_bytes(&mut iv);
        let sealed = match self {
            Mode::Plain => return None,
            Mode::Cbc => cbc_encrypt(key, &iv, plain)?,
            Mode::Gcm => gcm(key, |cipher| {
                cipher.encrypt(aes_gcm::Nonce::from_slice(&iv), plain).ok()
            })?,
        };
        iv.extend(sealed);
        Some(STANDARD.encode(iv))
    }
}

/// Runs `f` with AES-GCM of `key`'s size (128, 192 or 256 bits).
fn gcm<T>(key: &[u8], f: impl Fn(&dyn AeadBytes) -> Option<T>) -> Option<T> {
    match key.len() {
        16 => f(&aes_gcm::Aes128Gcm::new_from_slice(key).ok()?),
        24 => f(
            &aes_gcm::AesGcm::<aes::Aes192, aes_gcm::aead::consts::U12>::new_from_slice(key)
                .ok()?,
        ),
        32 => f(&aes_gcm::Aes256Gcm::new_from_slice(key).ok()?),
        _ => None,
    }
}

/// AES-GCM of any key size, as `gcm` hands it out.
trait AeadBytes {
    fn encrypt(
        &self,
        nonce: &aes_gcm::Nonce<aes_gcm::aead::consts::U12>,
        plain: &[u8],
    ) -> aes_gcm::aead::Result<Vec<u8>>;
    fn decrypt(
        &self,
        nonce: &aes_gcm::Nonce<aes_gcm::aead::consts::U12>,
        sealed: &[u8],
    ) -> aes_gcm::aead::Result<Vec<u8>>;
}

impl<A: Aead<NonceSize = aes_gcm::aead::consts::U12>> AeadBytes for A {
    fn encrypt(
        &self,
        nonce: &aes_gcm::Nonce<aes_gcm::aead::consts::U12>,
        plain: &[u8],
    ) -> aes_gcm::aead::Result<Vec<u8>> {
        Aead::encrypt(self, nonce, plain)
    }

    fn decrypt(
        &self,
        nonce: &aes_gcm::Nonce<aes_gcm::aead::consts::U12>,
        sealed: &[u8],
    ) -> aes_gcm::aead::Result<Vec<u8>> {
        Aead::decrypt(self, nonce, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef";

    /// What the SDK sends: hex of IV then ciphertext (here sealed with the crates directly).
    fn sdk_enc(mode: Mode, plain: &[u8]) -> String {
        let iv = vec![7u8; mode.iv_len()];
        let sealed = match mode {
            Mode::Cbc => cbc_encrypt(KEY, &iv, plain).unwrap(),
            Mode::Gcm => {
                let cipher = aes_gcm::Aes128Gcm::new_from_slice(KEY).unwrap();
                Aead::encrypt(&cipher, aes_gcm::Nonce::from_slice(&iv), plain).unwrap()
            }
            Mode::Plain => unreachable!(),
        };
        iv.iter()
            .chain(&sealed)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn requests_decrypt_and_answers_round_trip_in_both_modes() {
        let json = br#"{"dn":"www.example.test","q":"4,6"}"#;
        for mode in [Mode::Cbc, Mode::Gcm] {
            let enc = sdk_enc(mode, json);
            assert_eq!(
                mode.decrypt_hex(KEY, &enc).as_deref(),
                Some(&json[..]),
                "{mode:?}"
            );
            assert_eq!(
                mode.decrypt_hex(b"fedcba9876543210", &enc),
                None,
                "{mode:?}: other key"
            );
            assert_eq!(mode.decrypt_hex(KEY, "zz"), None);
            let sealed = STANDARD
                .decode(mode.encrypt_base64(KEY, b"answer").unwrap())
                .unwrap();
            let hex: String = sealed.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(mode.decrypt_hex(KEY, &hex).as_deref(), Some(&b"answer"[..]));
        }
        // A tampered GCM message is refused.
        let mut enc = sdk_enc(Mode::Gcm, json).into_bytes();
        let last = enc.len() - 1;
        enc[last] = if enc[last] == b'0' { b'1' } else { b'0' };
        let enc = String::from_utf8(enc).unwrap();
        assert_eq!(Mode::Gcm.decrypt_hex(KEY, &enc), None);
    }
}
