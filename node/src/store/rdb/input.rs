//! Byte sources for the decoders: a slice (DUMP payloads, listpacks) and
//! any `io::Read` (files, sockets), each knowing its offset. Reads of a
//! length taken from the data allocate as the bytes arrive, so a corrupt
//! length cannot reserve more memory than the input holds.

use super::{Crc64, RdbError};

/// Largest piece read (and allocated) at once for a long string.
const CHUNK: usize = 1 << 20;

pub trait Input {
    /// Bytes consumed so far.
    fn offset(&self) -> u64;

    /// Fills `buf` or fails (a short input is `Corrupt`).
    fn read_into(&mut self, buf: &mut [u8]) -> Result<(), RdbError>;

    /// Bytes left, when the input knows (a slice does): lets decoders
    /// refuse counts that cannot fit before they allocate.
    fn remaining(&self) -> Option<u64>;

    fn u8(&mut self) -> Result<u8, RdbError> {
        let mut b = [0u8; 1];
        self.read_into(&mut b)?;
        Ok(b[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        let mut b = [0u8; N];
        self.read_into(&mut b)?;
        Ok(b)
    }

    /// `n` bytes, allocated as they are read.
    fn read_vec(&mut self, n: u64) -> Result<Vec<u8>, RdbError> {
        if self.remaining().is_some_and(|r| n > r) {
            return Err(self.corrupt(format!("a length of {n} bytes runs past the end of the data")));
        }
        let mut v = Vec::with_capacity((n as usize).min(CHUNK));
        let mut left = n;
        while left > 0 {
            let take = (left as usize).min(CHUNK);
            let start = v.len();
            v.resize(start + take, 0);
            self.read_into(&mut v[start..])?;
            left -= take as u64;
        }
        Ok(v)
    }

    fn corrupt(&self, what: impl Into<String>) -> RdbError {
        RdbError::corrupt(self.offset(), what)
    }

    /// An element count read from the data, checked against what is left
    /// when that is known (each element takes at least `min_bytes`).
    fn check_count(&self, n: u64, min_bytes: u64) -> Result<(), RdbError> {
        match self.remaining() {
            Some(r) if n.saturating_mul(min_bytes) > r => Err(self.corrupt(format!("a count of {n} elements cannot fit in the data left"))),
            _ => Ok(()),
        }
    }
}

/// A byte slice being read.
pub struct SliceInput<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Added to offsets in errors (where this slice sits in a bigger input).
    base: u64,
}

impl<'a> SliceInput<'a> {
    pub fn new(buf: &'a [u8]) -> SliceInput<'a> {
        SliceInput { buf, pos: 0, base: 0 }
    }

    pub fn at(buf: &'a [u8], base: u64) -> SliceInput<'a> {
        SliceInput { buf, pos: 0, base }
    }

    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], RdbError> {
        if n > self.buf.len() - self.pos {
            return Err(self.corrupt("unexpected end of data"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
}

impl Input for SliceInput<'_> {
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn read_into(&mut self, buf: &mut [u8]) -> Result<(), RdbError> {
        let s = self.take(buf.len())?;
        buf.copy_from_slice(s);
        Ok(())
    }

    fn remaining(&self) -> Option<u64> {
        Some((self.buf.len() - self.pos) as u64)
    }
}

/// An `io::Read` being read, checksummed as it goes. Reads go straight to
/// the source (give it a buffered reader): nothing past the data asked for
/// is consumed, so a socket can carry more after the file.
pub struct StreamInput<R> {
    r: R,
    offset: u64,
    crc: Crc64,
}

impl<R: std::io::Read> StreamInput<R> {
    pub fn new(r: R) -> StreamInput<R> {
        StreamInput { r, offset: 0, crc: Crc64::new() }
    }

    /// The CRC-64 of every byte read so far.
    pub fn crc(&self) -> u64 {
        self.crc.clone().finish()
    }

    /// Reads without adding to the checksum (the stored checksum itself).
    pub fn read_unsummed(&mut self, buf: &mut [u8]) -> Result<(), RdbError> {
        self.fill(buf)
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RdbError> {
        match self.r.read_exact(buf) {
            Ok(()) => {
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(RdbError::corrupt(self.offset, "unexpected end of file")),
            Err(e) => Err(RdbError::Io(e)),
        }
    }
}

impl<R: std::io::Read> Input for StreamInput<R> {
    fn offset(&self) -> u64 {
        self.offset
    }

    fn read_into(&mut self, buf: &mut [u8]) -> Result<(), RdbError> {
        self.fill(buf)?;
        self.crc.update(buf);
        Ok(())
    }

    fn remaining(&self) -> Option<u64> {
        None
    }
}
