//! Alibaba-style accounts: who may ask (the account exists, over HTTPS when it says so, signed
//! when it says so), whether a signature holds, and the account's own request budget.
//!
//! Order matters: a request is checked, then its signature, and only then does it spend the
//! account's budget, so that forged or expired signatures cannot drain a real account's budget.
//!
//! Signatures (hex, compared in constant time):
//! - v1 resolve (`sign_d`, `sign_resolve`): `s = md5(host-secret-t)`, `host` as sent (a batch's
//!   comma-joined list), `t` the expiry in unix seconds;
//! - scheduling (`/{account}/ss`): `s = md5(n-secret-t)`, `n` a nonce, `t` the signing time;
//! - v2 (`/v2/d`): `s = hex(hmac_sha256(hex_decode(secret), "k1=v1&k2=v2..."))` over every
//!   parameter but `s`, sorted by name, `exp` the expiry.
//!
//! An expiry may lie at most `httpdns.max_signature_lifetime` seconds ahead, so a signed URL
//! cannot be made permanent; a signing time (scheduling) at most that far from now.

use governor::DefaultDirectRateLimiter;
use governor::clock::{Clock, DefaultClock};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

use super::hex;
use super::question::Params;
use super::{ApiError, HttpDns, Scheme};

/// An account of the Alibaba-style API.
pub(super) struct Account {
    pub(super) secret: Option<String>,
    pub(super) require_signature: bool,
    /// Plain HTTP requests are refused (`HttpsRequired`).
    pub(super) https_only: bool,
    /// HMAC-SHA256 keyed with the secret as v2 signs (`v2_key`), keyed once at start: each
    /// v2 request clones it instead of hashing the key again.
    pub(super) v2_mac: Option<Hmac<Sha256>>,
    /// The v2 API's AES key (`m=1`, `m=2`).
    pub(super) aes_key: Option<Vec<u8>>,
    /// The account's own request budget; None: unlimited.
    pub(super) limiter: Option<DefaultDirectRateLimiter>,
}

/// What a request's signature covers, by API.
pub(super) enum Signed<'p> {
    /// v1 resolve: the `host` parameter as sent.
    Host(&'p str),
    /// Scheduling: the nonce `n`.
    Nonce,
    /// v2: the parameters of `V2_SIGNED` and `sdns-*`.
    V2,
}

pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl HttpDns {
    /// The account `id`, if it may be asked over `scheme`, `signed` or not.
    pub(super) fn account(
        &self,
        id: &str,
        scheme: Scheme,
        signed: bool,
    ) -> Result<&Account, ApiError> {
        let Some(account) = self.accounts.get(id) else {
            return Err(ApiError::forbidden(
                "InvalidAccount",
                format!("unknown account {id:?}"),
            ));
        };
        if account.https_only && scheme == Scheme::Http {
            return Err(ApiError::forbidden(
                "HttpsRequired",
                "this account answers over HTTPS only",
            ));
        }
        if account.require_signature && !signed {
            return Err(ApiError::forbidden(
                "SignatureRequired",
                "this account accepts signed requests only",
            ));
        }
        Ok(account)
    }

    /// Checks the signature of `params` for `account`.
    pub(super) fn verify(
        &self,
        account: &Account,
        what: Signed<'_>,
        params: &Params<'_>,
    ) -> Result<(), ApiError> {
        let secret = account.secret.as_deref().ok_or_else(|| {
            ApiError::forbidden(
                "SignatureNotSupported",
                "this account has no signing secret",
            )
        })?;
        let time_key = if matches!(what, Signed::V2) {
            "exp"
        } else {
            "t"
        };
        let time = params
            .get(time_key)
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| {
                let message = format!("{time_key} (unix seconds) is required");
                ApiError::forbidden("InvalidSignature", message)
            })?;
        let signature = params
            .get("s")
            .ok_or_else(|| ApiError::forbidden("InvalidSignature", "s (signature) is required"))?;
        self.check_time(time_key, time, matches!(what, Signed::Nonce))?;
        let expected = match what {
            Signed::Host(host) => hex::encode(&Md5::digest(format!("{host}-{secret}-{time}"))),
            Signed::Nonce => {
                let nonce = params.get("n").ok_or_else(|| {
                    ApiError::forbidden("InvalidSignature", "n (nonce) is required")
                })?;
                hex::encode(&Md5::digest(format!("{nonce}-{secret}-{time}")))
            }
            Signed::V2 => match &account.v2_mac {
                Some(key) => v2_signature(key, params),
                None => String::new(),
            },
        };
        if !same_hex(&expected, signature) {
            return Err(ApiError::forbidden("InvalidSignature", "s does not match"));
        }
        Ok(())
    }

    /// A signature's time (`time_key`): an expiry (v1, v2) must not have passed, a signing
    /// time (scheduling's `t`) must be at most the allowed lifetime old; neither may be more
    /// than that lifetime ahead.
    fn check_time(&self, time_key: &str, time: u64, is_signing_time: bool) -> Result<(), ApiError> {
        let now = now();
        let lifetime = self.max_signature_lifetime;
        if !is_signing_time && time < now {
            return Err(ApiError::forbidden(
                "SignatureExpired",
                format!("{time_key}={time} is in the past"),
            ));
        }
        if is_signing_time && time.saturating_add(lifetime) < now {
            return Err(ApiError::forbidden(
                "SignatureExpired",
                format!("t={time} is more than {lifetime} s old"),
            ));
        }
        if time > now.saturating_add(lifetime) {
            return Err(ApiError::forbidden(
                "InvalidTimestamp",
                format!("{time_key}={time} is more than {lifetime} s ahead"),
            ));
        }
        Ok(())
    }

    /// Spends one request of the account's budget.
    pub(super) fn spend(&self, account: &Account) -> Result<(), ApiError> {
        let Some(limiter) = &account.limiter else {
            return Ok(());
        };
        limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::too_many("rate limit for this account", wait)
        })
    }
}

/// The parameters a v2 signature covers, as the SDKs sign them (the Android SDK's
/// `SignService`; the Node.js SDK signs a subset): these and every `sdns-*`, when not empty.
/// Others the SDKs send (`sdk=android_2.6.5`, `sid=`) are not signed.
const V2_SIGNED: [&str; 9] = ["id", "m", "dn", "cip", "q", "enc", "exp", "tags", "v"];

/// The v2 signing key: HMAC-SHA256 keyed with the hex-decoded secret (decoded as Node's
/// `Buffer.from(secret, "hex")` does: pairs of hex digits up to the first that is not one).
pub(super) fn v2_key(secret: &str) -> Option<Hmac<Sha256>> {
    // HMAC takes keys of any length.
    Hmac::<Sha256>::new_from_slice(&hex::decode_prefix(secret)).ok()
}

/// The v2 signature: HMAC-SHA256 (`v2_key`) over `k=v` pairs of the signed parameters
/// (`V2_SIGNED`), sorted by name and joined by `&`.
pub(super) fn v2_signature(key: &Hmac<Sha256>, params: &Params<'_>) -> String {
    let signed = |k: &str| V2_SIGNED.contains(&k) || k.starts_with("sdns-");
    let mut pairs: Vec<(&str, &str)> = params
        .pairs()
        .filter(|(k, v)| signed(k) && !v.is_empty())
        .collect();
    pairs.sort_unstable();
    let mut mac = key.clone();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            mac.update(b"&");
        }
        mac.update(k.as_bytes());
        mac.update(b"=");
        mac.update(v.as_bytes());
    }
    hex::encode(&mac.finalize().into_bytes())
}

/// Lowercase hex; equal length and bytes (case-insensitive), in time independent of where
/// they differ.
fn same_hex(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()))
            == 0
}

#[cfg(test)]
mod tests {
    use super::{v2_key, v2_signature};
    use crate::httpdns::question::Params;

    #[test]
    fn v2_signs_sorted_pairs_without_s() {
        // Reference: Node's crypto.createHmac('sha256', Buffer.from('0123456789abcdef',
        // 'hex')).update('dn=a.test&exp=1700000000&id=139450&m=0&q=4,6').digest('hex'),
        // reproduced by the hmac crate directly.
        use hmac::{Hmac, Mac};
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef])
                .unwrap();
        mac.update(b"dn=a.test&exp=1700000000&id=139450&m=0&q=4,6");
        let expected = crate::httpdns::hex::encode(&mac.finalize().into_bytes());
        let key = v2_key("0123456789abcdef").unwrap();
        let query = "id=139450&dn=a.test&q=4,6&m=0&exp=1700000000&s=ignored";
        let params = Params::parse(Some(query));
        assert_eq!(v2_signature(&key, &params), expected);
        // The Android SDK's extras (`sdk`, `sid`) and empty values are not signed.
        let android = format!("{query}&sdk=android_2.6.5&sid=a1b2&tags=");
        let params = Params::parse(Some(&android));
        assert_eq!(v2_signature(&key, &params), expected);
    }
}
