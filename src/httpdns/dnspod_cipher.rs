//! The DNSPod SDK's ciphers, keyed per authorisation id: DES (ECB, PKCS#5/7 padding, the key's
//! first 8 bytes) and AES (CBC, PKCS#7, a random 16-byte IV sent before the ciphertext; the key
//! padded with "0" to 16 bytes, AES-128/192/256 by its length). Both travel as lowercase hex.
//! The request's `dn` (and `ip`, when encrypted) is decrypted, the answer encrypted the same way.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyInit, KeyIvInit};
use rand::RngCore;

use super::hex;
use crate::config::DnspodKey;

/// AES block and IV size.
const IV_LEN: usize = 16;

/// `alg=des` or `alg=aes`, with the id's key.
pub(super) enum DnspodCipher<'k> {
    Des(&'k [u8; 8]),
    Aes(&'k [u8]),
}

/// What one `[[httpdns.dnspod_keys]]` entry configures for its id, made into key bytes once
/// when the node starts rather than on every request.
pub(super) struct DnspodKeys {
    /// The first 8 bytes of `key`.
    pub(super) des: Option<[u8; 8]>,
    /// `aes_key` (or `key`) padded as the SDK pads it; None when it has no AES length.
    pub(super) aes: Option<Vec<u8>>,
    /// The HTTPS token `/d` requires for this id.
    pub(super) token: Option<String>,
}

impl DnspodKeys {
    pub(super) fn new(config: &DnspodKey) -> DnspodKeys {
        DnspodKeys {
            des: config.des_key().and_then(|k| k.try_into().ok()),
            aes: config.aes_key(),
            token: config.token.clone(),
        }
    }
}

impl DnspodCipher<'_> {
    /// The plaintext of `text` (hex), None when it is not hex, does not decrypt or is not
    /// UTF-8.
    pub(super) fn decrypt_hex(&self, text: &str) -> Option<String> {
        let bytes = hex::decode(text)?;
        let plain = match self {
            DnspodCipher::Des(key) => ecb::Decryptor::<des::Des>::new_from_slice(*key)
                .ok()?
                .decrypt_padded_vec_mut::<Pkcs7>(&bytes)
                .ok()?,
            DnspodCipher::Aes(key) => {
                let (iv, data) = bytes.split_at_checked(IV_LEN)?;
                aes_decrypt(key, iv, data)?
            }
        };
        String::from_utf8(plain).ok()
    }

    /// `text` encrypted, in hex (AES: the IV first).
    pub(super) fn encrypt_hex(&self, text: &str) -> Option<String> {
        let bytes = match self {
            DnspodCipher::Des(key) => ecb::Encryptor::<des::Des>::new_from_slice(*key)
                .ok()?
                .encrypt_padded_vec_mut::<Pkcs7>(text.as_bytes()),
            DnspodCipher::Aes(key) => {
                // The thread's CSPRNG (ChaCha, seeded and reseeded from the OS): an unpredictable
                // IV per answer without a system call per answer.
                let mut iv = [0u8; IV_LEN];
                rand::rng().fill_bytes(&mut iv);
                let mut out = iv.to_vec();
                out.extend(aes_encrypt(key, &iv, text.as_bytes())?);
                out
            }
        };
        Some(hex::encode(&bytes))
    }
}

/// AES-CBC with PKCS#7 padding, of `key`'s size (128, 192 or 256 bits); also Alibaba v2's `m=1`.
pub(super) fn aes_decrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .ok(),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .ok(),
        32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .ok(),
        _ => None,
    }
}

pub(super) fn aes_encrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    Some(match key.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
            .ok()?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        32 => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::DnspodCipher;

    #[test]
    fn des_matches_a_known_vector_and_round_trips() {
        // DES-ECB of "www.qq.com" under key "12345678" with PKCS#5 padding, as
        // `openssl enc -des-ecb -K 3132333435363738 -nosalt` (and Java's DES/ECB/PKCS5Padding)
        // give it.
        let des = DnspodCipher::Des(b"12345678");
        let encrypted = des.encrypt_hex("www.qq.com").unwrap();
        assert_eq!(encrypted, "7cc5a7c9601837cd9840ab895aeb46fc");
        assert_eq!(des.decrypt_hex(&encrypted).as_deref(), Some("www.qq.com"));
        assert_eq!(des.decrypt_hex("zz"), None);
        assert_eq!(des.decrypt_hex("00112233"), None);
    }

    #[test]
    fn aes_matches_a_known_vector() {
        // `openssl enc -aes-128-cbc -K 30..66 -iv 000102..0f` of "www.qq.com", IV first.
        let aes = DnspodCipher::Aes(b"0123456789abcdef");
        let sent = "000102030405060708090a0b0c0d0e0f40b54782591a7b9cd1d8a06e5602902c";
        assert_eq!(aes.decrypt_hex(sent).as_deref(), Some("www.qq.com"));
    }

    #[test]
    fn aes_sends_its_iv_first_and_round_trips() {
        for key in [
            &b"0123456789abcdef"[..],
            b"0123456789abcdef01234567",
            &[b'k'; 32],
        ] {
            let aes = DnspodCipher::Aes(key);
            let one = aes.encrypt_hex("a.test,b.test").unwrap();
            let two = aes.encrypt_hex("a.test,b.test").unwrap();
            assert_ne!(one, two, "a fresh IV each time");
            assert_eq!(one.len(), 2 * (16 + 16));
            assert_eq!(aes.decrypt_hex(&one).as_deref(), Some("a.test,b.test"));
        }
    }
}
