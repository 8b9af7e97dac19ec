//! The write sink: a send buffer with a high-water mark that keeps the caller's chunks.
//!
//! Bytes accepted by [`Sink::write`] stay queued until the adapter reports them written with
//! [`Sink::consume`]; nothing but [`Sink::clear`] drops them. Small copied writes share one
//! growable tail buffer (so a steady stream of small replies allocates nothing once warm),
//! while large owned [`Bytes`] chunks are queued as they are, without a copy.
//!
//! A tail that grew past [`RETAIN_CAPACITY`] for a burst is not kept by its sink once empty
//! (an idle socket holds no burst's worth of memory); it goes to a one-buffer cache of the
//! thread instead, where the next large copied write on that thread takes it back. A socket
//! streaming large writes therefore reuses one buffer rather than allocating per write.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

/// The high-water mark used when none is configured: 256 KiB.
pub const DEFAULT_HIGH_WATER_MARK: usize = 256 * 1024;

/// Owned chunks shorter than this are copied into the tail instead of queued on their own:
/// a separate chunk costs an iovec entry and a queue slot, more than copying a few bytes.
const COPY_THRESHOLD: usize = 512;

/// Once empty, a tail buffer larger than this is released so an idle socket does not keep a
/// burst's worth of memory.
const RETAIN_CAPACITY: usize = 16 * 1024;

/// The largest released tail the thread's cache keeps (bigger ones are freed).
const CACHE_CAPACITY: usize = 1024 * 1024;

thread_local! {
    /// One released large tail buffer per thread, for the next large copied write.
    static SPARE_TAIL: RefCell<Option<BytesMut>> = const { RefCell::new(None) };
}

/// Takes the thread's spare tail if it can hold `additional` bytes without growing.
fn take_spare(additional: usize) -> Option<BytesMut> {
    SPARE_TAIL
        .try_with(|spare| {
            let mut spare = spare.try_borrow_mut().ok()?;
            if spare.as_ref()?.capacity() >= additional {
                spare.take()
            } else {
                None
            }
        })
        .ok()
        .flatten()
}

/// Gives an empty, released tail buffer to the thread's cache (keeping the larger of two).
fn give_spare(buf: BytesMut) {
    let _ = SPARE_TAIL.try_with(|spare| {
        if let Ok(mut spare) = spare.try_borrow_mut() {
            if spare.as_ref().is_none_or(|s| s.capacity() < buf.capacity()) {
                *spare = Some(buf);
            }
        }
    });
}

/// A send buffer bounded by a high-water mark.
///
/// `write` accepts at most `high_water_mark - len()` bytes and returns how many it took, so the
/// buffered amount never exceeds the mark. Use it directly to build your own framing, or
/// through a socket, where the adapter drains it with one vectored write.
///
/// ```
/// use sansock_core::Sink;
/// let mut sink = Sink::with_high_water_mark(8);
/// assert_eq!(sink.write(b"hello"), 5);
/// assert_eq!(sink.write(b"world"), 3); // only 3 bytes of room left
/// let mut slices = [std::io::IoSlice::new(&[]); 4];
/// let n = sink.io_slices(&mut slices);
/// let flat: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
/// assert_eq!(flat, b"hellowor");
/// sink.consume(8);
/// assert!(sink.is_empty());
/// ```
#[derive(Debug)]
pub struct Sink {
    /// Owned chunks, oldest first; all of them precede `tail`.
    chunks: VecDeque<Bytes>,
    /// Copied bytes, after every chunk.
    tail: BytesMut,
    len: usize,
    high_water_mark: usize,
}

impl Default for Sink {
    fn default() -> Self {
        Self::with_high_water_mark(DEFAULT_HIGH_WATER_MARK)
    }
}

impl Sink {
    /// A sink with the given high-water mark (at least 1 byte).
    pub fn with_high_water_mark(high_water_mark: usize) -> Self {
        Sink {
            chunks: VecDeque::new(),
            tail: BytesMut::new(),
            len: 0,
            high_water_mark: high_water_mark.max(1),
        }
    }

    /// The configured high-water mark in bytes.
    pub fn high_water_mark(&self) -> usize {
        self.high_water_mark
    }

    /// Changes the high-water mark; bytes already buffered are kept even above it.
    pub fn set_high_water_mark(&mut self, high_water_mark: usize) {
        self.high_water_mark = high_water_mark.max(1);
    }

    /// Bytes buffered and not yet consumed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many more bytes a write would accept now.
    pub fn room(&self) -> usize {
        self.high_water_mark.saturating_sub(self.len)
    }

    /// Copies as much of `data` as fits under the high-water mark; returns how much.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.room());
        self.push(&data[..n]);
        n
    }

    /// Queues as much of `data` as fits, without copying large chunks; returns how much.
    pub fn write_bytes(&mut self, mut data: Bytes) -> usize {
        let n = data.len().min(self.room());
        data.truncate(n);
        self.push_bytes(data);
        n
    }

    /// Copies all of `data`, whatever the high-water mark (the caller bounds the total).
    pub fn push(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.reserve_tail(data.len());
            self.tail.extend_from_slice(data);
            self.len += data.len();
        }
    }

    /// Queues all of `data` without copying it when large, whatever the high-water mark.
    pub fn push_bytes(&mut self, data: Bytes) {
        let n = data.len();
        if n == 0 {
            return;
        }
        if n < COPY_THRESHOLD {
            self.reserve_tail(n);
            self.tail.extend_from_slice(&data);
        } else {
            if !self.tail.is_empty() {
                self.chunks.push_back(self.tail.split().freeze());
            }
            self.chunks.push_back(data);
        }
        self.len += n;
    }

    /// Moves every byte of `later` behind this sink's bytes, leaving `later` empty.
    pub fn append(&mut self, later: &mut Sink) {
        if later.is_empty() {
            return;
        }
        if self.is_empty() {
            // The common case when writes raced a transmit: take `later`'s buffers whole.
            std::mem::swap(&mut self.chunks, &mut later.chunks);
            std::mem::swap(&mut self.tail, &mut later.tail);
            self.len = later.len;
            later.len = 0;
            return;
        }
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
        self.chunks.extend(later.chunks.drain(..));
        self.len += later.len - later.tail.len();
        let tail = later.tail.split();
        self.push(&tail);
        later.len = 0;
    }

    /// Fills `out` with slices of the buffered bytes, oldest first, for one vectored write;
    /// returns how many slices it filled.
    pub fn io_slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for chunk in &self.chunks {
            if n == out.len() {
                return n;
            }
            out[n] = IoSlice::new(chunk);
            n += 1;
        }
        if n < out.len() && !self.tail.is_empty() {
            out[n] = IoSlice::new(&self.tail);
            n += 1;
        }
        n
    }

    /// The oldest buffered bytes as one contiguous slice (empty when nothing is buffered).
    pub fn first_slice(&self) -> &[u8] {
        match self.chunks.front() {
            Some(chunk) => chunk,
            None => &self.tail,
        }
    }

    /// Drops the first `n` buffered bytes, which were written. `n` larger than
    /// [`len`](Self::len) is clamped.
    pub fn consume(&mut self, n: usize) {
        let mut left = n.min(self.len);
        self.len -= left;
        while left > 0 {
            match self.chunks.front_mut() {
                Some(front) if front.len() <= left => {
                    left -= front.len();
                    self.chunks.pop_front();
                }
                Some(front) => {
                    front.advance(left);
                    left = 0;
                }
                None => {
                    self.tail.advance(left);
                    left = 0;
                }
            }
        }
        if self.len == 0 {
            self.release_if_large();
        }
    }

    /// Takes every buffered byte as one contiguous [`Bytes`] (stream mode: build a frame with
    /// writes, then take it).
    pub fn take_all(&mut self) -> Bytes {
        self.len = 0;
        if self.chunks.is_empty() {
            return self.tail.split().freeze();
        }
        let mut out = BytesMut::with_capacity(
            self.chunks.iter().map(Bytes::len).sum::<usize>() + self.tail.len(),
        );
        for chunk in self.chunks.drain(..) {
            out.extend_from_slice(&chunk);
        }
        out.extend_from_slice(&self.tail);
        self.tail.clear();
        out.freeze()
    }

    /// Drops every buffered byte (used by `terminate` and fatal errors only).
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.tail.clear();
        self.len = 0;
        self.release_if_large();
    }

    /// Releases all buffer memory, keeping nothing for reuse.
    pub fn shrink(&mut self) {
        if self.len == 0 {
            self.chunks = VecDeque::new();
            self.tail = BytesMut::new();
        }
    }

    /// Before a copied write of `additional` bytes into an empty tail too small for them:
    /// takes the thread's spare large buffer, if any, instead of allocating.
    fn reserve_tail(&mut self, additional: usize) {
        if additional > RETAIN_CAPACITY && self.tail.is_empty() && self.tail.capacity() < additional
        {
            if let Some(spare) = take_spare(additional) {
                self.tail = spare;
            }
        }
    }

    fn release_if_large(&mut self) {
        self.tail.clear();
        if self.tail.capacity() > RETAIN_CAPACITY {
            let mut released = std::mem::take(&mut self.tail);
            // Move the write position back to the start of the allocation (the buffer is
            // empty; this never allocates) so the cached buffer offers all of it.
            let _ = released.try_reclaim(released.capacity() + 1);
            if released.capacity() <= CACHE_CAPACITY {
                give_spare(released);
            }
        }
        if self.chunks.capacity() > 64 {
            self.chunks = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flatten(sink: &Sink) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); 64];
        let n = sink.io_slices(&mut slices);
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn write_stops_at_high_water_mark() {
        let mut sink = Sink::with_high_water_mark(10);
        assert_eq!(sink.write(&[1; 6]), 6);
        assert_eq!(sink.write(&[2; 6]), 4);
        assert_eq!(sink.write(&[3; 6]), 0);
        assert_eq!(sink.len(), 10);
        assert_eq!(sink.room(), 0);
    }

    #[test]
    fn owned_chunks_keep_order_with_copied_bytes() {
        let mut sink = Sink::with_high_water_mark(1 << 20);
        sink.write(b"ab");
        sink.write_bytes(Bytes::from(vec![b'x'; 1000]));
        sink.write(b"cd");
        let flat = flatten(&sink);
        assert_eq!(&flat[..2], b"ab");
        assert!(flat[2..1002].iter().all(|&b| b == b'x'));
        assert_eq!(&flat[1002..], b"cd");
        sink.consume(500);
        assert_eq!(flatten(&sink).len(), 504);
        sink.consume(504);
        assert!(sink.is_empty());
        assert!(flatten(&sink).is_empty());
    }

    #[test]
    fn take_all_returns_everything_in_order() {
        let mut sink = Sink::default();
        sink.write(b"he");
        sink.write_bytes(Bytes::from(vec![b'l'; 600]));
        sink.write(b"o");
        let all = sink.take_all();
        assert_eq!(all.len(), 603);
        assert_eq!(&all[..2], b"he");
        assert_eq!(all[602], b'o');
        assert!(sink.is_empty());
    }

    #[test]
    fn consume_more_than_len_is_clamped() {
        let mut sink = Sink::default();
        sink.write(b"abc");
        sink.consume(10);
        assert!(sink.is_empty());
        assert_eq!(sink.write(b"z"), 1);
        assert_eq!(flatten(&sink), b"z");
    }
}
