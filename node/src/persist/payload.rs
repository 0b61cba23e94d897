//! A full sync's payload as a replica reads it, in either of Redis's
//! forms: `$<len>\r\n` and that many bytes of RDB (a primary that went
//! through a file), or `$EOF:<40-byte mark>\r\n`, the RDB, then the same
//! mark (a diskless primary, which does not know the length beforehand).
//! `Payload` reads exactly the RDB's bytes and consumes nothing after the
//! payload, so the replication stream that follows stays in the reader;
//! the mark may arrive split across reads.

use std::io::{BufRead, Read};

/// Length of the end mark (Redis's `RDB_EOF_MARK_SIZE`).
pub const MARK_LEN: usize = 40;

/// How the payload's end is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Form {
    Len(u64),
    Eof(Vec<u8>),
}

impl Form {
    /// Parses the payload's first line (without its CRLF).
    pub fn parse(head: &str) -> Result<Form, String> {
        let bad = || format!("expected the snapshot's length or end mark, got {head}");
        let rest = head.strip_prefix('$').ok_or_else(bad)?;
        if let Some(mark) = rest.strip_prefix("EOF:") {
            if mark.len() != MARK_LEN {
                return Err(bad());
            }
            return Ok(Form::Eof(mark.as_bytes().to_vec()));
        }
        rest.parse().map(Form::Len).map_err(|_| bad())
    }
}

/// The RDB bytes of one payload, read from `r`.
pub struct Payload<'a, R: BufRead> {
    r: &'a mut R,
    form: Form,
    /// `Len`: bytes still owed.
    left: u64,
    /// `Eof`: the last bytes seen that may be the start of the mark.
    held: Vec<u8>,
    /// Payload bytes ready to hand out, from `at`.
    ready: Vec<u8>,
    at: usize,
    done: bool,
    total: u64,
}

impl<'a, R: BufRead> Payload<'a, R> {
    pub fn new(r: &'a mut R, form: Form) -> Payload<'a, R> {
        let (left, done) = match form {
            Form::Len(n) => (n, n == 0),
            Form::Eof(_) => (0, false),
        };
        Payload { r, form, left, held: Vec::new(), ready: Vec::new(), at: 0, done, total: 0 }
    }

    /// Reads what is left of the payload (a loader stops at the RDB's
    /// checksum: what follows must be nothing but the end); true when
    /// there was nothing.
    pub fn finish(&mut self) -> std::io::Result<bool> {
        let mut extra = 0u64;
        let mut buf = [0u8; 4096];
        loop {
            match self.read(&mut buf)? {
                0 => return Ok(extra == 0),
                n => extra += n as u64,
            }
        }
    }

    /// Payload bytes handed out so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Finds more of an `Eof` payload: the bytes before the mark, never
    /// consuming what follows it.
    fn refill(&mut self, mark: &[u8]) -> std::io::Result<()> {
        let avail = self.r.fill_buf()?;
        if avail.is_empty() {
            return Err(closed());
        }
        let mut window = std::mem::take(&mut self.held);
        let held = window.len();
        window.extend_from_slice(avail);
        let found = window.windows(MARK_LEN).position(|w| w == mark);
        let n = avail.len();
        match found {
            Some(i) => {
                // `held` is shorter than the mark: the mark ends in `avail`.
                self.r.consume(i + MARK_LEN - held);
                window.truncate(i);
                self.done = true;
            }
            None => {
                self.r.consume(n);
                let keep = window.len().min(MARK_LEN - 1);
                self.held = window.split_off(window.len() - keep);
            }
        }
        self.ready = window;
        self.at = 0;
        Ok(())
    }
}

fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the primary closed the connection during the snapshot")
}

impl<R: BufRead> Read for Payload<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.at < self.ready.len() {
                let n = buf.len().min(self.ready.len() - self.at);
                buf[..n].copy_from_slice(&self.ready[self.at..self.at + n]);
                self.at += n;
                self.total += n as u64;
                return Ok(n);
            }
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            match &self.form {
                Form::Len(_) => {
                    let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
                    let n = self.r.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(closed());
                    }
                    self.left -= n as u64;
                    self.done = self.left == 0;
                    self.total += n as u64;
                    return Ok(n);
                }
                Form::Eof(mark) => {
                    let mark = mark.clone();
                    self.refill(&mark)?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARK: &str = "0123456789abcdef0123456789abcdef01234567";

    /// Reads a payload through a buffer of `cap` bytes; returns it and
    /// what is left in the reader.
    fn read_all(input: &[u8], form: Form, cap: usize) -> (Vec<u8>, Vec<u8>) {
        let mut r = std::io::BufReader::with_capacity(cap, input);
        let mut got = Vec::new();
        Payload::new(&mut r, form).read_to_end(&mut got).unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        (got, rest)
    }

    #[test]
    fn heads_parse_as_redis_sends_them() {
        assert_eq!(Form::parse("$123"), Ok(Form::Len(123)));
        assert_eq!(Form::parse(&format!("$EOF:{MARK}")), Ok(Form::Eof(MARK.as_bytes().to_vec())));
        for bad in ["$EOF:short", "123", "$x", "$-1x", "+OK"] {
            assert!(Form::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_eof_payload_ends_at_its_mark_wherever_reads_split_it() {
        let rdb: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut input = rdb.clone();
        input.extend_from_slice(MARK.as_bytes());
        input.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        // Buffer sizes that put the mark's start and end anywhere.
        for cap in [1, 2, 7, 39, 40, 41, 64, 1000, 4096, 1 << 16] {
            let (got, rest) = read_all(&input, Form::Eof(MARK.as_bytes().to_vec()), cap);
            assert_eq!(got, rdb, "cap {cap}");
            assert_eq!(rest, b"*1\r\n$4\r\nPING\r\n", "cap {cap}");
        }
        // An empty payload, and one cut short.
        let (got, rest) = read_all(MARK.as_bytes(), Form::Eof(MARK.as_bytes().to_vec()), 16);
        assert!(got.is_empty() && rest.is_empty());
        let mut r = std::io::BufReader::new(&input[..4000]);
        let err = Payload::new(&mut r, Form::Eof(MARK.as_bytes().to_vec())).read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_length_payload_stops_at_its_length() {
        let input = b"REDIS0010....rest of the stream";
        let (got, rest) = read_all(input, Form::Len(13), 5);
        assert_eq!(got, b"REDIS0010....");
        assert_eq!(rest, b"rest of the stream");
        let mut r = std::io::BufReader::new(&input[..]);
        let mut p = Payload::new(&mut r, Form::Len(20));
        let mut four = [0u8; 4];
        p.read_exact(&mut four).unwrap();
        assert!(!p.finish().unwrap(), "bytes were left");
        let mut r = std::io::BufReader::new(&input[..5]);
        assert!(Payload::new(&mut r, Form::Len(13)).read_to_end(&mut Vec::new()).is_err());
    }
}
