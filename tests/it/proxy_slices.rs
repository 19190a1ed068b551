//! Large objects kept in slices (`proxy.slice_size`): a seek into a large object fetches the
//! slices around it, each slice is fetched once however many clients want it, whole-object
//! requests are served slice by slice, and a changed object never mixes versions.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hyper::Request;
use hyper::body::Incoming;

use crate::proxy_stream::{Origin, cache_status, full, response, send};

/// A response's body bytes (the object is binary: not text).
async fn bytes(response: hyper::Response<Incoming>) -> Bytes {
    let collected = http_body_util::BodyExt::collect(response.into_body()).await;
    collected.expect("a complete body").to_bytes()
}

const LENGTH: usize = 64 << 20;

/// 64 MiB where each byte tells its offset apart from its neighbours'.
fn video() -> &'static Bytes {
    static VIDEO: OnceLock<Bytes> = OnceLock::new();
    VIDEO.get_or_init(|| {
        let bytes: Vec<u8> = (0..LENGTH).map(|i| (i % 251) as u8).collect();
        Bytes::from(bytes)
    })
}

/// What the origin sent: body bytes in all, and whether it now serves version 2.
#[derive(Default)]
struct Served {
    bytes: AtomicU64,
    changed: AtomicBool,
}

/// An origin of one 64 MiB object that honours single byte ranges, as nginx does for files.
async fn video_origin() -> (Origin, Arc<Served>) {
    video_origin_varying(false).await
}

/// The same, with `Vary: Accept-Encoding` on every response when `vary`.
async fn video_origin_varying(vary: bool) -> (Origin, Arc<Served>) {
    let served = Arc::new(Served::default());
    let counted = Arc::clone(&served);
    let origin = Origin::start(Arc::new(move |req: &Request<Incoming>| {
        let changed = counted.changed.load(Ordering::SeqCst);
        let etag = if changed { "\"v2\"" } else { "\"v1\"" };
        let body = if changed {
            Bytes::from(vec![b'2'; LENGTH])
        } else {
            video().clone()
        };
        let range = req
            .headers()
            .get("range")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes="))
            .and_then(|v| v.split_once('-'))
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
        let mut common = vec![
            ("cache-control", "max-age=600"),
            ("etag", etag),
            ("accept-ranges", "bytes"),
        ];
        if vary {
            common.push(("vary", "Accept-Encoding"));
        }
        match range {
            Some((first, last)) if first < LENGTH => {
                let last = last.min(LENGTH - 1);
                counted
                    .bytes
                    .fetch_add((last - first + 1) as u64, Ordering::SeqCst);
                let content_range = format!("bytes {first}-{last}/{LENGTH}");
                let mut fields = common.to_vec();
                fields.push(("content-range", &content_range));
                let mut partial = response(&fields, full(body.slice(first..=last)));
                *partial.status_mut() = hyper::StatusCode::PARTIAL_CONTENT;
                partial
            }
            _ => {
                counted.bytes.fetch_add(LENGTH as u64, Ordering::SeqCst);
                response(&common, full(body))
            }
        }
    }))
    .await;
    (origin, served)
}

#[tokio::test]
async fn a_seek_fetches_only_the_slices_it_needs_once() {
    let (origin, served) = video_origin().await;
    let node = origin.node("max_object_size = \"4MiB\"\n");
    let (first, last) = (40_000_000usize, 40_100_000usize);
    let range = format!("bytes={first}-{last}");
    let seek = send(&node, "/video.mp4", &[("range", &range)]).await;
    assert_eq!(seek.status(), 206);
    assert_eq!(
        seek.headers()["content-range"],
        format!("bytes {first}-{last}/{LENGTH}").as_str()
    );
    assert_eq!(cache_status(&seek), "edgenode; fwd=miss; detail=\"slice\"");
    let body = seek.into_body();
    let got = http_body_util::BodyExt::collect(body)
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(got, video().slice(first..=last));
    assert_eq!(
        served.bytes.load(Ordering::SeqCst),
        1 << 20,
        "one 1 MiB slice"
    );

    // The same seek from five clients at once: a hit, nothing more from the origin.
    let asked = [("range", range.as_str())];
    let seeks = (0..5).map(|_| send(&node, "/video.mp4", &asked));
    for again in futures_util::future::join_all(seeks).await {
        assert_eq!(cache_status(&again), "edgenode; hit; detail=\"slice\"");
        assert_eq!(bytes(again).await.len(), last - first + 1);
    }
    assert_eq!(served.bytes.load(Ordering::SeqCst), 1 << 20);

    // The whole object, slice by slice: the 63 other slices once, and the right bytes.
    let whole = send(&node, "/video.mp4", &[]).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(
        whole.headers()["content-length"],
        LENGTH.to_string().as_str()
    );
    let got = http_body_util::BodyExt::collect(whole.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(got == *video(), "the whole object, in order");
    assert_eq!(served.bytes.load(Ordering::SeqCst), LENGTH as u64);
    assert_eq!(origin.count("/video.mp4"), 64);
}

#[tokio::test]
async fn a_changed_object_never_mixes_versions() {
    let (origin, served) = video_origin().await;
    let node = origin.node("max_object_size = \"4MiB\"\n");
    // Slice 10 of version 1 is cached; then the object changes.
    let early = send(&node, "/video.mp4", &[("range", "bytes=10485760-10485769")]).await;
    assert_eq!(bytes(early).await.len(), 10);
    served.changed.store(true, Ordering::SeqCst);
    // A range over slices 10 (v1, cached) and 11 (fetched: v2): cut, never mixed.
    let spanning = send(&node, "/video.mp4", &[("range", "bytes=11534330-11534345")]).await;
    assert_eq!(spanning.status(), 206);
    let body = http_body_util::BodyExt::collect(spanning.into_body()).await;
    assert!(
        body.is_err(),
        "a body of two versions must not look complete"
    );
    // Every slice of version 1 went: the same range is now all version 2.
    let again = send(&node, "/video.mp4", &[("range", "bytes=11534330-11534345")]).await;
    assert_eq!(again.headers()["etag"], "\"v2\"");
    assert_eq!(bytes(again).await, "2".repeat(16));
}

/// A whole-object GET of a large object streams through once and marks it; later requests are
/// served in slices.
#[tokio::test]
async fn a_large_object_fetched_whole_is_sliced_afterwards() {
    let (origin, served) = video_origin().await;
    let node = origin.node("max_object_size = \"4MiB\"\n");
    let whole = send(&node, "/video.mp4", &[]).await;
    assert!(
        cache_status(&whole).contains("too-large"),
        "{:?}",
        whole.headers()
    );
    assert_eq!(bytes(whole).await.len(), LENGTH);
    assert_eq!(served.bytes.load(Ordering::SeqCst), LENGTH as u64);
    let seek = send(&node, "/video.mp4", &[("range", "bytes=100-199")]).await;
    assert_eq!(cache_status(&seek), "edgenode; fwd=miss; detail=\"slice\"");
    assert_eq!(bytes(seek).await, video().slice(100..200));
    assert_eq!(
        served.bytes.load(Ordering::SeqCst),
        (LENGTH + (1 << 20)) as u64
    );
}

/// In a cluster each slice has its owner (rendezvous on the slice's key): a node fetches the
/// slices it does not own from their owners, which fetch them from the origin, so the origin
/// sends the object once for the whole cluster however many nodes serve it.
#[tokio::test]
async fn slices_come_from_their_owners_in_a_cluster() {
    let (origin, served) = video_origin().await;
    // Made before the nodes ask (slow in a debug build), so no slice's owner is late.
    video();
    let url = origin.url();
    let members = tokio::task::spawn_blocking(move || {
        crate::cluster::start_cluster_with(2, &url, "max_object_size = \"4MiB\"\n", "")
    })
    .await
    .unwrap();
    // A seek on each node finds the object large and keeps it in slices there; then each
    // node serves it whole.
    let host = ("host", "video.example.test");
    for member in &members {
        let seek = [host, ("range", "bytes=40000000-40100000")];
        let (status, _, body) =
            crate::support::http_request(member.proxy, "GET", "/video.mp4", &seek, Vec::new())
                .await;
        assert_eq!((status, body.len()), (206, 100_001), "{}", member.id);
    }
    for member in &members {
        let (status, _, body) =
            crate::support::http_request(member.proxy, "GET", "/video.mp4", &[host], Vec::new())
                .await;
        assert_eq!(status, 200, "{}", member.id);
        assert!(
            body == *video(),
            "{}: the whole object, in order",
            member.id
        );
    }
    let mut fetches = String::new();
    for member in &members {
        let (_, _, metrics) =
            crate::support::http_request(member.admin, "GET", "/metrics", &[], Vec::new()).await;
        let metrics = String::from_utf8_lossy(&metrics).into_owned();
        for line in metrics
            .lines()
            .filter(|l| l.starts_with("edgenode_proxy_fetches_total"))
        {
            fetches += &format!("{}: {line}\n", member.id);
        }
    }
    assert_eq!(
        served.bytes.load(Ordering::SeqCst),
        LENGTH as u64,
        "once for the cluster:\n{fetches}"
    );
    assert_eq!(origin.count("/video.mp4"), 64);
    // Both nodes asked the other for the slices it owns.
    for member in &members {
        let (_, _, metrics) =
            crate::support::http_request(member.admin, "GET", "/metrics", &[], Vec::new()).await;
        let metrics = String::from_utf8_lossy(&metrics);
        let siblings = metrics
            .lines()
            .find_map(|l| l.strip_prefix("edgenode_proxy_fetches_total{source=\"sibling\"} "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        assert!(
            siblings >= 8,
            "{}: {siblings} slices from the owner",
            member.id
        );
    }
    drop(members);
}

/// Slices are kept per URL, not per variant: an object that varies is never sliced, so no
/// client gets bytes of another variant; its ranges are answered, and nothing is kept.
#[tokio::test]
async fn an_object_that_varies_is_not_sliced() {
    let (origin, _served) = video_origin_varying(true).await;
    let node = origin.node("max_object_size = \"4MiB\"\n");
    let (first, last) = (40_000_000usize, 40_100_000usize);
    let range = format!("bytes={first}-{last}");
    for _ in 0..2 {
        let seek = send(&node, "/video.mp4", &[("range", &range)]).await;
        assert!(
            !cache_status(&seek).contains("slice"),
            "{}",
            cache_status(&seek)
        );
        assert!(
            !cache_status(&seek).contains("hit"),
            "{}",
            cache_status(&seek)
        );
        let status = seek.status();
        let got = bytes(seek).await;
        match status.as_u16() {
            206 => assert_eq!(got, video().slice(first..=last)),
            200 => assert!(got == *video()),
            other => panic!("status {other}"),
        }
    }
    let whole = send(&node, "/video.mp4", &[]).await;
    assert_eq!(whole.status(), 200);
    assert!(
        !cache_status(&whole).contains("slice"),
        "{}",
        cache_status(&whole)
    );
    assert!(bytes(whole).await == *video());
}
