//! One origin fetch shared by every client that missed the same object meanwhile: the response
//! head as soon as it arrives, then the body as it grows, so the first byte reaches each client
//! when it reaches the node, not once the object is complete.
//!
//! While the object is being stored the whole body is kept (it becomes the stored copy), and
//! the fetch runs at the origin's pace whatever the clients' pace. When it is not being stored
//! (too large, or not storable), only what some reader has yet to read is kept, and the fetch
//! waits for the slowest reader once `WINDOW` bytes are ahead of it, and stops when no reader
//! is left.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::{HeaderMap, StatusCode};
use tokio::sync::watch;
use tokio::time::Instant;

use super::policy::NotStorable;
use super::store::HttpObject;
use super::upstream::FetchError;
use crate::http_server::{Body, BoxError};

/// Bytes a fetch that is not being stored may run ahead of its slowest reader.
const WINDOW: u64 = 1 << 20;

/// A fetch in progress; shared by its clients through `Arc`.
pub(super) struct BodyFill {
    state: watch::Sender<State>,
    next_reader: AtomicU64,
}

/// Where the fetch stands.
#[derive(Clone, Default)]
pub(super) enum Phase {
    #[default]
    Pending,
    /// The head is in; the body follows.
    Streaming(Arc<Head>),
    /// A complete object to serve from (the origin's 304 refreshed the stored copy).
    Complete(Arc<HttpObject>),
    /// No usable response (connection, timeout, open circuit, or a 5xx).
    Failed(Arc<FetchError>),
}

/// The origin's response head, as the cache keeps it.
pub(super) struct Head {
    pub status: StatusCode,
    /// Hop-by-hop fields (and unshared ones, when stored) removed.
    pub headers: HeaderMap,
    /// The unshared fields of a stored response (a cookie not marked shared): the leader's
    /// alone, never a joiner's.
    pub own_fields: HeaderMap,
    /// The leader's values of the response's `Vary` fields.
    pub vary_key: Option<String>,
    pub disposition: Disposition,
    pub request_time: SystemTime,
    pub response_time: SystemTime,
}

/// What becomes of the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Disposition {
    /// Stored when complete; every client that joined gets it.
    Store,
    /// Storable but over `max_object_size`: streamed to the clients that joined, not stored.
    TooLarge,
    /// RFC 9111 forbids storing it: only the leader gets it.
    Pass(NotStorable),
}

#[derive(Default)]
struct State {
    phase: Phase,
    body: Buffer,
    /// The stored copy, once the body is complete and stored.
    stored: Option<Arc<HttpObject>>,
}

/// The body received so far (or, when not kept whole, the part some reader has yet to read).
#[derive(Default)]
struct Buffer {
    chunks: VecDeque<Bytes>,
    /// Body offset of each chunk.
    starts: VecDeque<u64>,
    /// Bytes received in all.
    received: u64,
    /// Set when the body ended: cleanly, or with the reason readers get as their error.
    end: Option<Result<(), Arc<str>>>,
    /// Every byte is kept (the object is being stored).
    keep_all: bool,
    /// Each registered reader's offset.
    readers: HashMap<u64, u64>,
}

impl Buffer {
    fn kept_from(&self) -> u64 {
        self.starts.front().copied().unwrap_or(self.received)
    }

    /// Drops the chunks every reader is past, unless the body is kept whole. True if any went.
    fn trim(&mut self) -> bool {
        if self.keep_all {
            return false;
        }
        let low = self
            .readers
            .values()
            .copied()
            .min()
            .unwrap_or(self.received);
        let mut trimmed = false;
        while let (Some(start), Some(chunk)) = (self.starts.front(), self.chunks.front()) {
            if start + chunk.len() as u64 > low {
                break;
            }
            self.starts.pop_front();
            self.chunks.pop_front();
            trimmed = true;
        }
        trimmed
    }

    /// The bytes from `offset` to the end of its chunk.
    fn read_at(&self, offset: u64) -> Option<Bytes> {
        if offset >= self.received || offset < self.kept_from() {
            return None;
        }
        let index = self
            .starts
            .partition_point(|&s| s <= offset)
            .checked_sub(1)?;
        let start = self.starts[index];
        let chunk = &self.chunks[index];
        let skip = usize::try_from(offset - start).ok()?;
        Some(chunk.slice(skip..))
    }
}

impl BodyFill {
    pub fn new() -> BodyFill {
        BodyFill {
            state: watch::Sender::new(State::default()),
            next_reader: AtomicU64::new(0),
        }
    }

    /// A reader from the start of the body; registered now, so nothing it has yet to read is
    /// dropped. Take one before the head arrives.
    pub fn reader(self: &Arc<Self>) -> Reader {
        let id = self.next_reader.fetch_add(1, Ordering::Relaxed);
        self.state.send_modify(|state| {
            state.body.readers.insert(id, 0);
        });
        Reader {
            flight: Arc::clone(self),
            receiver: self.state.subscribe(),
            id,
            offset: 0,
            done: false,
        }
    }

    /// The phase once it is past `Pending`.
    pub async fn head(&self) -> Phase {
        let mut receiver = self.state.subscribe();
        loop {
            let phase = receiver.borrow_and_update().phase.clone();
            if !matches!(phase, Phase::Pending) {
                return phase;
            }
            if receiver.changed().await.is_err() {
                // The sender lives in `self`, so this cannot end; be safe anyway.
                return phase;
            }
        }
    }

    pub fn fail(&self, error: FetchError) {
        let error = Arc::new(error);
        self.state
            .send_modify(|state| state.phase = Phase::Failed(error));
    }

    pub fn complete(&self, stored: Arc<HttpObject>) {
        self.state
            .send_modify(|state| state.phase = Phase::Complete(stored));
    }

    pub fn start_body(&self, head: Arc<Head>) {
        let keep_all = head.disposition == Disposition::Store;
        self.state.send_modify(|state| {
            state.phase = Phase::Streaming(head);
            state.body.keep_all = keep_all;
        });
    }

    /// Stops keeping the body whole (it turned out too large): from now on only what readers
    /// still need is kept.
    pub fn stop_keeping(&self) {
        self.state.send_modify(|state| {
            state.body.keep_all = false;
            state.body.trim();
        });
    }

    /// Bytes of body received so far.
    pub fn received(&self) -> u64 {
        self.state.borrow().body.received
    }

    pub fn push(&self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.state.send_modify(|state| {
            let body = &mut state.body;
            body.starts.push_back(body.received);
            body.received += chunk.len() as u64;
            body.chunks.push_back(chunk);
        });
    }

    /// The whole body, when every byte was kept, in one allocation of its own; in one piece
    /// from now on (the stored copy and the readers still streaming share it).
    pub fn whole_body(&self) -> Option<Bytes> {
        let mut whole = None;
        self.state.send_if_modified(|state| {
            let body = &mut state.body;
            if !body.keep_all || body.kept_from() != 0 {
                return false;
            }
            // Always a copy of its own: a chunk from hyper is a slice of the connection's read
            // buffer, and keeping it would keep that whole buffer (8 KiB and more) alive for as
            // long as the object is stored.
            let mut joined = BytesMut::with_capacity(body.received as usize);
            body.chunks.iter().for_each(|c| joined.extend_from_slice(c));
            let joined = joined.freeze();
            body.chunks = VecDeque::from([joined.clone()]);
            body.starts = VecDeque::from([0]);
            whole = Some(joined);
            false
        });
        whole
    }

    /// The body is complete and stored as `stored` (readers that must answer from the whole
    /// object, such as a Range request, take it from here).
    pub fn stored(&self, stored: Arc<HttpObject>) {
        self.state.send_modify(|state| state.stored = Some(stored));
    }

    /// Ends the body: cleanly, or with the error every reader's stream ends with.
    pub fn end(&self, result: Result<(), String>) {
        self.state.send_modify(|state| {
            state.body.end = Some(result.map_err(Arc::from));
        });
    }

    /// Waits, when the body is not kept whole, until the slowest reader is within `WINDOW`.
    /// A reader that stays `WINDOW` behind for `patience` while another reader waits for more
    /// is cut off (its body ends with an error), so that one client that stops reading does
    /// not stall the others; when every reader is behind, the fetch waits for them.
    pub async fn wait_for_readers(&self, patience: Duration) -> Readers {
        let mut receiver = self.state.subscribe();
        let mut stalled_since: Option<Instant> = None;
        loop {
            let stalled = {
                let state = receiver.borrow_and_update();
                let body = &state.body;
                if body.keep_all {
                    return Readers::Go { cut: 0 };
                }
                let Some(low) = body.readers.values().copied().min() else {
                    return Readers::Gone;
                };
                if body.received - low < WINDOW {
                    return Readers::Go { cut: 0 };
                }
                // Someone has read everything there is and waits for more.
                body.readers.values().any(|&offset| offset == body.received)
            };
            if !stalled {
                stalled_since = None;
                if receiver.changed().await.is_err() {
                    return Readers::Gone;
                }
                continue;
            }
            let deadline = *stalled_since.get_or_insert_with(Instant::now) + patience;
            tokio::select! {
                changed = receiver.changed() => {
                    if changed.is_err() {
                        return Readers::Gone;
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    let mut cut = 0;
                    self.state.send_modify(|state| {
                        let body = &mut state.body;
                        let received = body.received;
                        body.readers.retain(|_, offset| {
                            let keep = received - *offset < WINDOW;
                            cut += usize::from(!keep);
                            keep
                        });
                        body.trim();
                    });
                    return Readers::Go { cut };
                }
            }
        }
    }

    /// Whether every client that read this fetch has gone (a fetch no client ever read, such
    /// as a background refresh, is never abandoned).
    pub fn abandoned(&self) -> bool {
        self.next_reader.load(Ordering::Relaxed) > 0 && self.state.borrow().body.readers.is_empty()
    }
}

/// What the readers of a fetch let it do next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Readers {
    /// Fetch more; `cut` readers were cut off for falling behind.
    Go { cut: usize },
    /// No reader is left: the fetch may stop.
    Gone,
}

/// One client's position in the body.
pub(super) struct Reader {
    flight: Arc<BodyFill>,
    receiver: watch::Receiver<State>,
    id: u64,
    offset: u64,
    done: bool,
}

impl Reader {
    /// The next piece of the body; None at its clean end.
    async fn next(&mut self) -> Option<Result<Bytes, BoxError>> {
        if self.done {
            return None;
        }
        loop {
            let end = {
                let state = self.receiver.borrow_and_update();
                if !state.body.readers.contains_key(&self.id) {
                    drop(state);
                    self.done = true;
                    let reason = "cut off: fell too far behind the other clients of this object";
                    return Some(Err(reason.into()));
                }
                if let Some(bytes) = state.body.read_at(self.offset) {
                    drop(state);
                    self.advance(bytes.len() as u64);
                    return Some(Ok(bytes));
                }
                if self.offset < state.body.kept_from() {
                    Some(Err(Arc::from("joined after part of the body was dropped")))
                } else {
                    state.body.end.clone()
                }
            };
            match end {
                Some(Ok(())) => {
                    self.done = true;
                    return None;
                }
                Some(Err(reason)) => {
                    self.done = true;
                    return Some(Err(reason.to_string().into()));
                }
                None => {}
            }
            if self.receiver.changed().await.is_err() {
                self.done = true;
                return Some(Err("the origin fetch ended early".into()));
            }
        }
    }

    /// Joined too late: part of the body was already dropped (it is not being stored).
    pub fn is_behind(&self) -> bool {
        self.offset < self.receiver.borrow().body.kept_from()
    }

    fn advance(&mut self, by: u64) {
        self.offset += by;
        let (id, offset) = (self.id, self.offset);
        self.flight.state.send_if_modified(|state| {
            // A reader that was cut off is not listed again.
            let Some(listed) = state.body.readers.get_mut(&id) else {
                return false;
            };
            *listed = offset;
            // Also news when it has caught up: a fetch held back by a slower reader starts
            // counting that reader's time (`BodyFill::wait_for_readers`).
            state.body.trim() || offset == state.body.received
        });
    }

    /// Waits for the end of the body; the stored copy if it ended cleanly and was stored.
    pub async fn finished(&mut self) -> Option<Arc<HttpObject>> {
        loop {
            {
                let state = self.receiver.borrow_and_update();
                if state.body.end.is_some() {
                    return state.stored.clone();
                }
            }
            if self.receiver.changed().await.is_err() {
                return None;
            }
        }
    }

    /// The rest of the body as a response body.
    pub fn into_body(self) -> Body {
        let stream = futures_util::stream::unfold(self, |mut reader| async move {
            let item = reader.next().await?;
            Some((item, reader))
        });
        stream_body(stream.boxed())
    }
}

/// A stream of body pieces as a response body.
pub(super) fn stream_body(stream: BoxStream<'static, Result<Bytes, BoxError>>) -> Body {
    ReaderBody(Mutex::new(stream)).boxed()
}

/// A reader's stream as a response body. The stream is `Send` but not `Sync`, which the node's
/// boxed `Body` needs; the mutex supplies that without ever being locked (`poll_frame` has
/// `&mut` access).
struct ReaderBody(Mutex<BoxStream<'static, Result<Bytes, BoxError>>>);

impl hyper::body::Body for ReaderBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let stream = self
            .get_mut()
            .0
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        stream
            .poll_next_unpin(cx)
            .map(|item| item.map(|result| result.map(Frame::data)))
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let id = self.id;
        self.flight.state.send_if_modified(|state| {
            state.body.readers.remove(&id);
            state.body.trim() || state.body.readers.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(disposition: Disposition) -> Arc<Head> {
        Arc::new(Head {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            own_fields: HeaderMap::new(),
            vary_key: None,
            disposition,
            request_time: SystemTime::now(),
            response_time: SystemTime::now(),
        })
    }

    async fn read_all(reader: Reader) -> Result<Vec<u8>, String> {
        let collected = reader.into_body().collect().await;
        collected
            .map(|c| c.to_bytes().to_vec())
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn every_reader_gets_the_whole_body_and_it_is_kept_for_storing() {
        let flight = Arc::new(BodyFill::new());
        let (early, late) = (flight.reader(), flight.reader());
        flight.start_body(head(Disposition::Store));
        flight.push(Bytes::from_static(b"hello "));
        let early = tokio::spawn(read_all(early));
        flight.push(Bytes::from_static(b"world"));
        flight.end(Ok(()));
        assert_eq!(flight.whole_body().as_deref(), Some(&b"hello world"[..]));
        assert_eq!(early.await.unwrap().unwrap(), b"hello world");
        assert_eq!(read_all(late).await.unwrap(), b"hello world");
    }

    #[tokio::test]
    async fn a_failed_body_ends_every_reader_with_an_error() {
        let flight = Arc::new(BodyFill::new());
        let reader = flight.reader();
        flight.start_body(head(Disposition::Store));
        flight.push(Bytes::from_static(b"partial"));
        flight.end(Err("origin reset".into()));
        assert_eq!(read_all(reader).await.unwrap_err(), "origin reset");
    }

    #[tokio::test]
    async fn a_body_not_kept_is_trimmed_behind_its_readers_and_waits_for_them() {
        let flight = Arc::new(BodyFill::new());
        let mut reader = flight.reader();
        flight.start_body(head(Disposition::TooLarge));
        flight.push(Bytes::from(vec![1u8; WINDOW as usize]));
        // The reader has read nothing: the fetch must wait.
        let waiting =
            tokio::time::timeout(Duration::from_millis(50), flight.wait_for_readers(PATIENCE));
        assert!(waiting.await.is_err(), "ran ahead of its reader");
        let chunk = reader.next().await.unwrap().unwrap();
        assert_eq!(chunk.len(), WINDOW as usize);
        assert_eq!(
            flight.wait_for_readers(PATIENCE).await,
            Readers::Go { cut: 0 }
        );
        assert!(flight.whole_body().is_none(), "nothing kept whole");
        assert!(!flight.abandoned());
        drop(reader);
        assert_eq!(flight.wait_for_readers(PATIENCE).await, Readers::Gone);
        assert!(flight.abandoned());
    }

    const PATIENCE: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn a_reader_that_stops_reading_is_cut_off_and_the_others_go_on() {
        let flight = Arc::new(BodyFill::new());
        let mut stuck = flight.reader();
        let mut reading = flight.reader();
        flight.start_body(head(Disposition::TooLarge));
        flight.push(Bytes::from(vec![1u8; WINDOW as usize]));
        // The other reader is not waiting yet: nobody is cut, the fetch waits.
        let early = tokio::time::timeout(PATIENCE * 3, flight.wait_for_readers(PATIENCE));
        assert!(early.await.is_err(), "cut a reader while nobody waited");
        assert_eq!(
            reading.next().await.unwrap().unwrap().len(),
            WINDOW as usize
        );
        let started = Instant::now();
        assert_eq!(
            flight.wait_for_readers(PATIENCE).await,
            Readers::Go { cut: 1 }
        );
        assert!(started.elapsed() >= PATIENCE);
        let error = stuck.next().await.unwrap().unwrap_err().to_string();
        assert!(error.starts_with("cut off"), "{error}");
        flight.push(Bytes::from_static(b"more"));
        flight.end(Ok(()));
        assert_eq!(read_all(reading).await.unwrap(), b"more");
    }

    #[tokio::test]
    async fn stop_keeping_drops_what_was_read() {
        let flight = Arc::new(BodyFill::new());
        let mut reader = flight.reader();
        flight.start_body(head(Disposition::Store));
        flight.push(Bytes::from_static(b"abc"));
        flight.push(Bytes::from_static(b"def"));
        assert_eq!(&reader.next().await.unwrap().unwrap()[..], b"abc");
        flight.stop_keeping();
        flight.push(Bytes::from_static(b"ghi"));
        flight.end(Ok(()));
        assert_eq!(read_all(reader).await.unwrap(), b"defghi");
    }
}
