//! Framing for the handler world: lines and length-prefixed frames out of the byte chunks
//! `data` receives, with a maximum frame size.
//!
//! A frame that arrives whole inside one chunk is handed out as a slice of that chunk (no
//! copy); only a frame cut by a chunk boundary is gathered in the framer's buffer, which never
//! holds more than one frame of at most `max` bytes. A frame over the limit is a typed
//! [`FrameError`], never unbounded memory.
//!
//! ```
//! use sansock_core::framing::Lines;
//! use sansock_core::{Handler, Socket};
//!
//! /// Answers every line with its length; drops clients that send a line over 1 KiB.
//! struct LineLengths;
//! impl Handler for LineLengths {
//!     type Data = Lines;
//!     fn data(&self, socket: &mut Socket<'_, Lines>, bytes: &[u8]) {
//!         let (lines, out) = socket.parts();
//!         let fed = lines.feed(bytes, |line| {
//!             out.write(format!("{}\n", line.len()).as_bytes()).ok();
//!         });
//!         if let Err(e) = fed {
//!             out.end_with(format!("error: {e}\n").as_bytes()).ok();
//!         }
//!     }
//! }
//! # let mut lines = Lines::new(8);
//! # let mut seen = Vec::new();
//! # lines.feed(b"ab\ncd", |l| seen.push(l.to_vec())).unwrap();
//! # lines.feed(b"e\n", |l| seen.push(l.to_vec())).unwrap();
//! # assert_eq!(seen, [b"ab".to_vec(), b"cde".to_vec()]);
//! ```

/// A frame went over the framer's limit. The framer drops what it gathered; the stream is
/// no longer in sync, so close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A line grew past `max` bytes without a newline.
    #[error("line longer than {max} bytes")]
    LineTooLong {
        /// The limit.
        max: usize,
    },
    /// A length prefix announced `len` bytes, more than `max`.
    #[error("frame of {len} bytes announced, more than the {max}-byte limit")]
    FrameTooLong {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl From<FrameError> for std::io::Error {
    fn from(e: FrameError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}

/// Splits a stream into `\n`-terminated lines (the `\n` and a `\r` before it are removed),
/// each at most `max` bytes. Use it as (part of) a socket's `Data`; see the module docs.
#[derive(Debug, Default)]
pub struct Lines {
    /// The start of a line cut by a chunk boundary.
    partial: Vec<u8>,
    max: usize,
}

impl Lines {
    /// A line framer for lines of at most `max` bytes (without the line ending).
    pub fn new(max: usize) -> Self {
        Lines {
            partial: Vec::new(),
            max,
        }
    }

    /// Feeds one chunk; calls `on_line` with every complete line, in order. On a line over
    /// the limit, returns the error after the lines before it were handed out.
    pub fn feed(
        &mut self,
        mut bytes: &[u8],
        mut on_line: impl FnMut(&[u8]),
    ) -> Result<(), FrameError> {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            let (head, rest) = (&bytes[..end], &bytes[end + 1..]);
            bytes = rest;
            if self.partial.is_empty() {
                on_line(self.checked(head)?);
            } else {
                self.partial.extend_from_slice(head);
                let line = std::mem::take(&mut self.partial);
                on_line(self.checked(&line)?);
                self.partial = line;
                self.partial.clear();
            }
        }
        // An incomplete line may still get its `\r`: one byte over is not over yet.
        if self.partial.len() + bytes.len() > self.max + 1 {
            self.partial = Vec::new();
            return Err(FrameError::LineTooLong { max: self.max });
        }
        self.partial.extend_from_slice(bytes);
        if self.partial.is_empty() && self.partial.capacity() > 0 {
            // An idle connection keeps no buffer.
            self.partial = Vec::new();
        }
        Ok(())
    }

    /// `line` without its `\r`, if it is within the limit.
    fn checked<'l>(&mut self, line: &'l [u8]) -> Result<&'l [u8], FrameError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.max {
            self.partial = Vec::new();
            return Err(FrameError::LineTooLong { max: self.max });
        }
        Ok(line)
    }

    /// Bytes of an incomplete line held now.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }
}

/// Splits a stream into frames each preceded by its length as a 4-byte big-endian integer,
/// at most `max` bytes each. [`LengthDelimited::header`] makes the prefix for sending.
#[derive(Debug, Default)]
pub struct LengthDelimited {
    /// A frame (or its header) cut by a chunk boundary.
    partial: Vec<u8>,
    max: usize,
}

impl LengthDelimited {
    /// The length prefix's size.
    pub const HEADER: usize = 4;

    /// A framer for frames of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        LengthDelimited {
            partial: Vec::new(),
            max,
        }
    }

    /// The prefix to write before a frame of `len` bytes.
    pub fn header(len: usize) -> Result<[u8; 4], FrameError> {
        u32::try_from(len)
            .map(u32::to_be_bytes)
            .map_err(|_| FrameError::FrameTooLong {
                len,
                max: u32::MAX as usize,
            })
    }

    /// Feeds one chunk; calls `on_frame` with every complete frame, in order. On a frame over
    /// the limit, returns the error after the frames before it were handed out.
    pub fn feed(
        &mut self,
        mut bytes: &[u8],
        mut on_frame: impl FnMut(&[u8]),
    ) -> Result<(), FrameError> {
        loop {
            if self.partial.is_empty() {
                // Whole frames straight out of the chunk.
                let Some(len) = self.announced(bytes)? else {
                    break;
                };
                if bytes.len() < Self::HEADER + len {
                    break;
                }
                on_frame(&bytes[Self::HEADER..Self::HEADER + len]);
                bytes = &bytes[Self::HEADER + len..];
                continue;
            }
            // Complete the gathered header, then the gathered frame.
            let need_header = Self::HEADER.saturating_sub(self.partial.len());
            let take = need_header.min(bytes.len());
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            let Some(len) = self.announced(&self.partial.clone())? else {
                return Ok(());
            };
            let need = Self::HEADER + len - self.partial.len();
            let take = need.min(bytes.len());
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.partial.len() < Self::HEADER + len {
                return Ok(());
            }
            on_frame(&self.partial[Self::HEADER..]);
            self.partial = Vec::new();
        }
        self.partial.extend_from_slice(bytes);
        Ok(())
    }

    /// The length the header at the start of `bytes` announces, once all of it is there.
    fn announced(&mut self, bytes: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(header) = bytes.get(..Self::HEADER) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(header.try_into().expect("4 bytes")) as usize;
        if len > self.max {
            self.partial = Vec::new();
            return Err(FrameError::FrameTooLong { len, max: self.max });
        }
        Ok(Some(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(framer: &mut Lines, chunks: &[&[u8]]) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut out = Vec::new();
        for chunk in chunks {
            framer.feed(chunk, |l| out.push(l.to_vec()))?;
        }
        Ok(out)
    }

    #[test]
    fn lines_across_chunks_and_crlf() {
        let mut l = Lines::new(5);
        let got = lines_of(&mut l, &[b"ab", b"c\r\nde\n", b"\n", b"xy"]).unwrap();
        assert_eq!(got, [b"abc".to_vec(), b"de".to_vec(), b"".to_vec()]);
        assert_eq!(l.pending(), 2);
    }

    #[test]
    fn a_line_at_the_limit_passes_and_one_over_fails() {
        let mut l = Lines::new(3);
        assert_eq!(lines_of(&mut l, &[b"abc\r\n"]).unwrap(), [b"abc".to_vec()]);
        assert_eq!(
            lines_of(&mut l, &[b"ab", b"cde"]),
            Err(FrameError::LineTooLong { max: 3 })
        );
        assert_eq!(
            Lines::new(3).feed(b"abcd\n", |_| {}),
            Err(FrameError::LineTooLong { max: 3 })
        );
        // Without a newline, the limit holds too: memory stays bounded.
        assert_eq!(
            Lines::new(3).feed(&[b'x'; 100], |_| {}),
            Err(FrameError::LineTooLong { max: 3 })
        );
    }

    fn frames_of(f: &mut LengthDelimited, chunks: &[&[u8]]) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut out = Vec::new();
        for chunk in chunks {
            f.feed(chunk, |fr| out.push(fr.to_vec()))?;
        }
        Ok(out)
    }

    #[test]
    fn frames_whole_and_cut_anywhere() {
        let mut wire = Vec::new();
        for frame in [&b"hello"[..], b"", b"world!"] {
            wire.extend_from_slice(&LengthDelimited::header(frame.len()).unwrap());
            wire.extend_from_slice(frame);
        }
        let want = [b"hello".to_vec(), b"".to_vec(), b"world!".to_vec()];
        assert_eq!(
            frames_of(&mut LengthDelimited::new(10), &[&wire]).unwrap(),
            want
        );
        for cut in 0..wire.len() {
            let (a, b) = wire.split_at(cut);
            let mut f = LengthDelimited::new(10);
            assert_eq!(frames_of(&mut f, &[a, b]).unwrap(), want, "cut at {cut}");
            let bytes: Vec<&[u8]> = wire.chunks(1).collect();
            assert_eq!(
                frames_of(&mut LengthDelimited::new(10), &bytes).unwrap(),
                want
            );
        }
    }

    #[test]
    fn a_frame_over_the_limit_fails_before_it_is_buffered() {
        let mut f = LengthDelimited::new(4);
        let mut wire = LengthDelimited::header(1 << 30).unwrap().to_vec();
        wire.push(0);
        assert_eq!(
            f.feed(&wire, |_| {}),
            Err(FrameError::FrameTooLong {
                len: 1 << 30,
                max: 4
            })
        );
        assert_eq!(f.partial.capacity(), 0);
    }
}
