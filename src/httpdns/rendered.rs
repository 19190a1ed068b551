//! JSON bodies already rendered, by the DNS response they render: a warm name answers the same
//! bytes to every client of one location (authoritative answers do not age; recursive ones
//! change once a second), so the JSON APIs render each distinct answer once instead of once per
//! request. A fixed table of slots per thread, one response each, chosen by hash: a newer
//! response takes the slot over. Per thread, so that no lock or shared counter moves between
//! cores on every request (a table shared by the runtime's threads cost more CPU than the
//! rendering it saved); bounded in count and size per thread (`SLOTS` x `MAX_RESPONSE` plus the
//! bodies). Rendering is a function of the response and the subnet alone, so one table serves
//! every HTTPDNS listener of the process.

use std::cell::RefCell;
use std::net::IpAddr;

use bytes::Bytes;
use hyper::header::HeaderValue;
use ipnet::IpNet;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Slots in each thread's table.
const SLOTS: usize = 256;
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

struct Slot {
    /// The response without its ID.
    response: Box<[u8]>,
    subnet: Option<IpNet>,
    rendering: Rendering,
}

thread_local! {
    static TABLE: RefCell<Vec<Option<Slot>>> = const { RefCell::new(Vec::new()) };
}

/// The rendering of `wire` (with `subnet`), from this thread's table or from `render`, which
/// then goes into the table. None when `render` fails.
pub(super) fn get_or_render(
    wire: &[u8],
    subnet: Option<IpNet>,
    render: impl FnOnce() -> Option<Rendering>,
) -> Option<Rendering> {
    let Some(response) = wire.get(ID_LEN..).filter(|r| r.len() <= MAX_RESPONSE) else {
        return render();
    };
    let hash = xxh3_64_with_seed(response, subnet.map_or(0, subnet_seed));
    let index = (hash % SLOTS as u64) as usize;
    let found = TABLE.with_borrow(|table| {
        let slot = table.get(index)?.as_ref()?;
        (slot.subnet == subnet && *slot.response == *response).then(|| slot.rendering.clone())
    });
    if found.is_some() {
        return found;
    }
    let rendering = render()?;
    TABLE.with_borrow_mut(|table| {
        if table.is_empty() {
            table.resize_with(SLOTS, || None);
        }
        table[index] = Some(Slot {
            response: response.into(),
            subnet,
            rendering: rendering.clone(),
        });
    });
    Some(rendering)
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

    use super::{Rendering, get_or_render};

    #[test]
    fn renders_each_response_once_and_tells_subnets_and_responses_apart() {
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
            body(get_or_render(b"\x00\x01abc", None, || render("a"))),
            "a"
        );
        // Another ID, the same answer: not rendered again.
        assert_eq!(
            body(get_or_render(b"\x77\x02abc", None, || render("x"))),
            "a"
        );
        assert_eq!(renders.get(), 1);
        assert_eq!(
            body(get_or_render(b"\x00\x01abc", subnet, || render("s"))),
            "s"
        );
        assert_eq!(
            body(get_or_render(b"\x00\x01abd", None, || render("d"))),
            "d"
        );
        assert_eq!(renders.get(), 3);
        // A failed rendering is not kept.
        assert!(get_or_render(b"\x00\x01zz", None, || None).is_none());
        assert_eq!(
            body(get_or_render(b"\x00\x01zz", None, || render("z"))),
            "z"
        );
        // Long responses are rendered every time.
        let long = vec![7u8; 600];
        get_or_render(&long, None, || render("l"));
        get_or_render(&long, None, || render("l"));
        assert_eq!(renders.get(), 6);
    }
}
