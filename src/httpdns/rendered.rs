//! JSON bodies already rendered, by the DNS response they render: a warm name answers the same
//! bytes to every client of one location (authoritative answers do not age; recursive ones
//! change once a second), so the JSON APIs render each distinct answer once instead of once per
//! request. A fixed table of slots, one response each, chosen by hash: a newer response takes
//! the slot over. Bounded in count and in size (`SLOTS` x `MAX_RESPONSE` plus the bodies), and
//! a request that finds its slot locked renders for itself instead of waiting.

use std::net::IpAddr;
use std::sync::{Mutex, TryLockError};

use bytes::Bytes;
use hyper::header::HeaderValue;
use ipnet::IpNet;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Slots in the table.
const SLOTS: usize = 1024;
/// Responses longer than this are rendered every time: bounds a slot's memory.
const MAX_RESPONSE: usize = 512;
/// The message ID: not part of what is rendered.
const ID_LEN: usize = 2;

/// A rendered answer: the body and its Cache-Control.
#[derive(Clone)]
pub(super) struct Rendering {
    pub(super) body: Bytes,
    pub(super) cache_control: Option<HeaderValue>,
}

pub(super) struct Rendered {
    slots: Box<[Mutex<Option<Slot>>]>,
}

struct Slot {
    /// The response without its ID.
    response: Box<[u8]>,
    subnet: Option<IpNet>,
    rendering: Rendering,
}

impl Rendered {
    pub(super) fn new() -> Rendered {
        Rendered {
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// The rendering of `wire` (with `subnet`), from the table or from `render`, which then
    /// goes into the table. None when `render` fails.
    pub(super) fn get_or_render(
        &self,
        wire: &[u8],
        subnet: Option<IpNet>,
        render: impl FnOnce() -> Option<Rendering>,
    ) -> Option<Rendering> {
        let Some(response) = wire.get(ID_LEN..).filter(|r| r.len() <= MAX_RESPONSE) else {
            return render();
        };
        let hash = xxh3_64_with_seed(response, subnet.map_or(0, subnet_seed));
        let slot = &self.slots[(hash % SLOTS as u64) as usize];
        let mut guard = match slot.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return render(),
        };
        if let Some(found) = guard
            .as_ref()
            .filter(|s| s.subnet == subnet && *s.response == *response)
        {
            return Some(found.rendering.clone());
        }
        let rendering = render()?;
        *guard = Some(Slot {
            response: response.into(),
            subnet,
            rendering: rendering.clone(),
        });
        Some(rendering)
    }
}

/// Spreads one response asked with several subnets over several slots.
fn subnet_seed(subnet: IpNet) -> u64 {
    let address = match subnet.addr() {
        IpAddr::V4(ip) => u128::from(u32::from(ip)),
        IpAddr::V6(ip) => u128::from(ip),
    };
    let folded = (address as u64) ^ ((address >> 64) as u64);
    folded ^ (u64::from(subnet.prefix_len()) << 56) ^ 1
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use bytes::Bytes;

    use super::{Rendered, Rendering};

    #[test]
    fn renders_each_response_once_and_tells_subnets_and_responses_apart() {
        let table = Rendered::new();
        let renders = Cell::new(0);
        let render = |body: &'static str| {
            renders.set(renders.get() + 1);
            Some(Rendering {
                body: Bytes::from_static(body.as_bytes()),
                cache_control: None,
            })
        };
        let subnet = Some("192.0.2.0/24".parse().unwrap());
        let body = |r: Option<Rendering>| r.unwrap().body;
        assert_eq!(
            body(table.get_or_render(b"\x00\x01abc", None, || render("a"))),
            "a"
        );
        // Another ID, the same answer: not rendered again.
        assert_eq!(
            body(table.get_or_render(b"\x77\x02abc", None, || render("x"))),
            "a"
        );
        assert_eq!(renders.get(), 1);
        assert_eq!(
            body(table.get_or_render(b"\x00\x01abc", subnet, || render("s"))),
            "s"
        );
        assert_eq!(
            body(table.get_or_render(b"\x00\x01abd", None, || render("d"))),
            "d"
        );
        assert_eq!(renders.get(), 3);
        // A failed rendering is not kept.
        assert!(table.get_or_render(b"\x00\x01zz", None, || None).is_none());
        assert_eq!(
            body(table.get_or_render(b"\x00\x01zz", None, || render("z"))),
            "z"
        );
        // Long responses are rendered every time.
        let long = vec![7u8; 600];
        table.get_or_render(&long, None, || render("l"));
        table.get_or_render(&long, None, || render("l"));
        assert_eq!(renders.get(), 6);
    }
}
