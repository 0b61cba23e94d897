//! Incremental request parser. Handles RESP multibulk requests and inline
//! commands, keeps its place across partial reads (so a 512 MB bulk or a
//! million-argument MSET is scanned once), and enforces the protocol limits.

use bytes::{Bytes, BytesMut};

use crate::util::parse_int;

/// Longest inline command line accepted (as Redis's PROTO_INLINE_MAX_SIZE).
const INLINE_MAX: usize = 64 * 1024;
/// Largest multibulk count accepted (Redis's INT_MAX; the argument list
/// grows only as arguments arrive, within client-query-buffer-limit).
const MAX_MULTIBULK: i64 = i32::MAX as i64;
/// Before a password-protected connection authenticates: the most
/// arguments and the longest argument it may send (Redis's limits; AUTH and
/// HELLO fit well within them). Past them the connection is closed, so a
/// stranger cannot make the node buffer more than a few kilobytes.
const UNAUTH_MAX_MULTIBULK: i64 = 10;
const UNAUTH_MAX_BULK: usize = 16 * 1024;
/// Bulks at least this long get an allocation of their own, exactly their
/// size, read into straight from the socket (as Redis's
/// PROTO_MBULK_BIG_ARG): a large value is then stored without a copy, so
/// its first write does not stall the shard faulting in fresh pages.
pub const BIG_ARG: usize = 32 * 1024;
/// The first allocation for a big argument still arriving, and its growth
/// factor (`big_target`).
const BIG_FIRST: usize = 256 * 1024;
const GROWTH: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ERR Protocol error: {}", self.0)
    }
}

/// Marks an argument held in `Parser::owned` rather than in the frame.
const OWNED: usize = usize::MAX;

fn perr<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

/// Parser state for one connection.
pub struct Parser {
    /// Maximum bulk length (`proto-max-bulk-len`).
    pub max_bulk: usize,
    /// A multibulk request in progress: argument count and ranges found so far.
    expected: usize,
    /// Each argument's byte range in the frame; `(OWNED, k)` for `owned[k]`.
    ranges: Vec<(usize, usize)>,
    /// Big arguments, in buffers of their own.
    owned: Vec<Bytes>,
    /// A big argument being read, and its length.
    big: Option<(BytesMut, usize)>,
    /// Where scanning resumes in the buffer.
    pos: usize,
    /// Set while a multibulk header has been read.
    in_multibulk: bool,
    /// The connection has not authenticated yet: the tight limits apply.
    pub unauthenticated: bool,
}

thread_local! {
    /// Argument vectors of commands that have run on this thread, emptied,
    /// for the next commands parsed here (`give_back`): no allocation per
    /// command, and nothing kept per connection.
    static SPARE: std::cell::RefCell<Vec<Vec<Bytes>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How many emptied argument vectors a thread keeps, and the most room one
/// it keeps may have (a long MSET's is freed).
const SPARE_ARGS: usize = 256;
const SPARE_ARG_ROOM: usize = 16;

/// Takes back the argument vector of a command that has run, for a command
/// parsed later on this thread.
#[inline]
pub fn give_back(mut args: Vec<Bytes>) {
    if args.capacity() <= SPARE_ARG_ROOM {
        args.clear();
        SPARE.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < SPARE_ARGS {
                s.push(args);
            }
        });
    }
}

impl Parser {
    pub fn new(max_bulk: usize) -> Self {
        Parser {
            max_bulk,
            expected: 0,
            ranges: Vec::new(),
            owned: Vec::new(),
            big: None,
            pos: 0,
            in_multibulk: false,
            unauthenticated: false,
        }
    }

    /// While a big argument is being read: its buffer, which the connection
    /// reads into directly. It grows with what arrives, eightfold each time
    /// it is full and at last to exactly the announced length, so a client
    /// makes the node reserve at most eight times what it sent (Redis
    /// reserves the whole announced length at once), while the copies add
    /// up to a seventh of the argument and the largest one holds an eighth
    /// beside it.
    pub fn big_target(&mut self) -> Option<&mut BytesMut> {
        match &mut self.big {
            Some((b, len)) if b.len() < *len => {
                if b.len() == b.capacity() {
                    // A fresh exact allocation: the value keeps this buffer.
                    let mut grown = BytesMut::with_capacity((b.capacity() * GROWTH).clamp(BIG_FIRST, *len));
                    grown.extend_from_slice(b);
                    *b = grown;
                }
                Some(b)
            }
            _ => None,
        }
    }

    /// What the parser holds of a command still arriving, outside the
    /// input buffer: (bytes received of the big argument being read, room
    /// left in its buffer, bytes of the big arguments already complete).
    pub fn held(&self) -> (usize, usize, usize) {
        let (got, room) = self.big.as_ref().map_or((0, 0), |(b, _)| (b.len(), b.capacity() - b.len()));
        (got, room, self.owned.iter().map(|b| b.len()).sum())
    }

    /// Parses one complete command from `buf`, consuming its bytes. Returns
    /// `Ok(None)` when more input is needed. An empty inline line yields an
    /// empty argument list, which the caller ignores.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ParseError> {
        if !self.in_multibulk {
            if buf.is_empty() {
                return Ok(None);
            }
            if buf[0] != b'*' {
                return self.inline(buf);
            }
            let Some(eol) = find_crlf(buf, 0) else {
                if buf.len() > INLINE_MAX {
                    return perr("too big mbulk count string");
                }
                return Ok(None);
            };
            let n = parse_int(&buf[1..eol]).ok_or_else(|| ParseError("invalid multibulk length".into()))?;
            if n > MAX_MULTIBULK {
                return perr("invalid multibulk length");
            }
            if self.unauthenticated && n > UNAUTH_MAX_MULTIBULK {
                return perr("unauthenticated multibulk length");
            }
            if n <= 0 {
                let _ = buf.split_to(eol + 2);
                return Ok(Some(Vec::new()));
            }
            self.in_multibulk = true;
            self.expected = n as usize;
            self.ranges.clear();
            self.ranges.reserve(self.expected.min(1024));
            self.pos = eol + 2;
        }
        while self.ranges.len() < self.expected {
            if let Some((b, len)) = &self.big {
                // A big argument: complete once its bytes and the CRLF after
                // it (in `buf`) are in.
                if b.len() < *len || buf.len() < self.pos + 2 {
                    return Ok(None);
                }
                if &buf[self.pos..self.pos + 2] != b"\r\n" {
                    return perr("invalid bulk format");
                }
                let (b, _) = self.big.take().expect("checked above");
                self.ranges.push((OWNED, self.owned.len()));
                self.owned.push(b.freeze());
                self.pos += 2;
                continue;
            }
            let p = self.pos;
            if p >= buf.len() {
                return Ok(None);
            }
            if buf[p] != b'$' {
                return perr(format!("expected '$', got '{}'", buf[p] as char));
            }
            let Some(eol) = find_crlf(buf, p) else {
                if buf.len() - p > INLINE_MAX {
                    return perr("too big bulk count string");
                }
                return Ok(None);
            };
            let len = match parse_int(&buf[p + 1..eol]) {
                Some(l) if l >= 0 && (l as usize) <= self.max_bulk => l as usize,
                _ => return perr("invalid bulk length"),
            };
            if self.unauthenticated && len > UNAUTH_MAX_BULK {
                return perr("unauthenticated bulk length");
            }
            let start = eol + 2;
            let end = start + len;
            if len >= BIG_ARG {
                if buf.len() >= end + 2 {
                    // All here already: a copy of at most one read.
                    if &buf[end..end + 2] != b"\r\n" {
                        return perr("invalid bulk format");
                    }
                    self.ranges.push((OWNED, self.owned.len()));
                    self.owned.push(Bytes::copy_from_slice(&buf[start..end]));
                    self.pos = end + 2;
                    continue;
                }
                // Move what arrived of it into its own buffer; the rest is
                // read there directly (`big_target`).
                let tail = buf.split_off(start);
                let have = tail.len().min(len);
                let mut b = BytesMut::with_capacity(have.max(BIG_FIRST).min(len));
                b.extend_from_slice(&tail[..have]);
                buf.extend_from_slice(&tail[have..]);
                self.big = Some((b, len));
                self.pos = start;
                continue;
            }
            if buf.len() < end + 2 {
                // Make room for the whole bulk at once.
                buf.reserve(end + 2 - buf.len());
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return perr("invalid bulk format");
            }
            self.ranges.push((start, end));
            self.pos = end + 2;
        }
        let frame = buf.split_to(self.pos).freeze();
        let mut args = SPARE.with(|s| s.borrow_mut().pop()).unwrap_or_default();
        let mut owned = self.owned.drain(..);
        args.extend(self.ranges.iter().map(|&(s, e)| if s == OWNED { owned.next().unwrap_or_default() } else { frame.slice(s..e) }));
        drop(owned);
        self.in_multibulk = false;
        self.pos = 0;
        self.expected = 0;
        self.ranges.clear();
        if self.ranges.capacity() > 4096 {
            self.ranges.shrink_to(64);
        }
        Ok(Some(args))
    }

    fn inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ParseError> {
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() > INLINE_MAX {
                return perr("too big inline request");
            }
            return Ok(None);
        };
        let line = buf.split_to(nl + 1).freeze();
        let mut text = &line[..nl];
        if text.last() == Some(&b'\r') {
            text = &text[..text.len() - 1];
        }
        if !text.iter().any(|&b| matches!(b, b'"' | b'\'' | 0)) {
            return Ok(Some(split_plain(&line, text.len())));
        }
        match split_args(text) {
            Some(args) => Ok(Some(args.into_iter().map(Bytes::from).collect())),
            None => perr("unbalanced quotes in request"),
        }
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = buf[i..].iter().position(|&b| b == b'\r') {
        let at = i + off;
        if at + 1 >= buf.len() {
            return None;
        }
        if buf[at + 1] == b'\n' {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// C's `isspace`, which Redis's inline parser skips between arguments
/// (Rust's `is_ascii_whitespace` leaves out the vertical tab).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The bytes that end an unquoted inline argument (Redis's sdssplitargs;
/// NUL ends the whole line).
fn ends_arg(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// `split_args` of the first `len` bytes of `line` when they hold no quote
/// and no NUL (the usual inline command: `PING`, `GET key`): the arguments
/// are slices of the line, not copies.
fn split_plain(line: &Bytes, len: usize) -> Vec<Bytes> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < len && is_space(line[i]) {
            i += 1;
        }
        if i >= len {
            return args;
        }
        let start = i;
        while i < len && !ends_arg(line[i]) {
            i += 1;
        }
        args.push(line.slice(start..i));
    }
}

/// Splits an inline command line into arguments, honouring Redis's quoting
/// rules (double quotes with escapes, single quotes). `None` on unbalanced
/// quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 3 < n && line[i + 1] == b'x' && line[i + 2].is_ascii_hexdigit() && line[i + 3].is_ascii_hexdigit() {
                    let hex = std::str::from_utf8(&line[i + 2..i + 4]).ok()?;
                    cur.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 4;
                    continue;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        o => o,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
                i += 1;
            } else if in_sq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    cur.push(b'\'');
                    i += 2;
                    continue;
                } else if c == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
                i += 1;
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    // A NUL ends the line, as in Redis (which parses a C string).
                    0 => {
                        args.push(cur);
                        return Some(args);
                    }
                    c if ends_arg(c) => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
                i += 1;
            }
        }
        args.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ParseError> {
        let mut p = Parser::new(512 * 1024 * 1024);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(cmd) = p.next(&mut buf)? {
            out.push(cmd.iter().map(|b| b.to_vec()).collect());
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_pipeline() {
        let got = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(got, vec![vec![b"GET".to_vec(), b"a".to_vec()], vec![b"PING".to_vec()]]);
    }

    #[test]
    fn big_arguments_get_their_own_buffer() {
        let big = vec![b'v'; BIG_ARG * 3];
        let mut req = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", big.len()).into_bytes();
        req.extend_from_slice(&big);
        req.extend_from_slice(b"\r\n*1\r\n$4\r\nPING\r\n");
        // All at once.
        let got = parse_all(&req).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0][2], big);
        // In pieces, the bulk read straight into its own buffer.
        for split in [10, 30, 40, 1000, req.len() - 20, req.len() - 8] {
            let mut p = Parser::new(1 << 30);
            let mut buf = BytesMut::from(&req[..split]);
            let mut fed = split;
            let mut cmds = Vec::new();
            loop {
                while let Some(c) = p.next(&mut buf).unwrap() {
                    cmds.push(c);
                }
                if fed == req.len() {
                    break;
                }
                let n = 7000.min(req.len() - fed);
                match p.big_target() {
                    Some(b) => {
                        let n = n.min(b.capacity() - b.len());
                        b.extend_from_slice(&req[fed..fed + n]);
                        fed += n;
                    }
                    None => {
                        buf.extend_from_slice(&req[fed..fed + n]);
                        fed += n;
                    }
                }
            }
            assert_eq!(cmds.len(), 2, "split at {split}");
            assert_eq!(&cmds[0][2][..], &big[..], "split at {split}");
            assert_eq!(&cmds[1][0][..], b"PING");
        }
    }

    #[test]
    fn a_big_argument_grows_with_what_arrives() {
        let len = 3 * 1024 * 1024 + 17;
        let mut p = Parser::new(1 << 30);
        let mut buf = BytesMut::from(format!("*2\r\n$4\r\nECHO\r\n${len}\r\n").as_bytes());
        assert_eq!(p.next(&mut buf).unwrap(), None);
        // Announcing it takes only the first step.
        assert!(p.held().1 <= BIG_FIRST, "reserved {}", p.held().1);
        let mut fed = 0;
        while fed < len {
            let b = p.big_target().expect("reading the argument");
            assert!(b.capacity() <= (GROWTH * b.len()).max(BIG_FIRST).min(len), "{} for {}", b.capacity(), b.len());
            let n = (b.capacity() - b.len()).min(100_000);
            b.extend_from_slice(&vec![b'x'; n]);
            fed += n;
        }
        assert!(p.big_target().is_none());
        buf.extend_from_slice(b"\r\n");
        let args = p.next(&mut buf).unwrap().expect("complete");
        assert_eq!(args[1].len(), len);
        assert!(args[1].iter().all(|&c| c == b'x'));
    }

    #[test]
    fn unauthenticated_limits() {
        let mut p = Parser::new(512 * 1024 * 1024);
        p.unauthenticated = true;
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(p.next(&mut buf), Err(ParseError("unauthenticated multibulk length".into())));
        let mut p = Parser::new(512 * 1024 * 1024);
        p.unauthenticated = true;
        let mut buf = BytesMut::from(&b"*2\r\n$4\r\nAUTH\r\n$16385\r\n"[..]);
        assert_eq!(p.next(&mut buf), Err(ParseError("unauthenticated bulk length".into())));
        let mut buf = BytesMut::from(&b"*2\r\n$4\r\nAUTH\r\n$16384\r\n"[..]);
        let mut p = Parser::new(512 * 1024 * 1024);
        p.unauthenticated = true;
        assert_eq!(p.next(&mut buf), Ok(None));
    }

    #[test]
    fn byte_at_a_time() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let mut p = Parser::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut got = None;
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            if let Some(c) = p.next(&mut buf).unwrap() {
                got = Some(c);
            }
        }
        let got = got.unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(&got[2][..], b"hello");
        assert!(buf.is_empty());
    }

    #[test]
    fn argument_vectors_given_back_are_reused() {
        let mut p = Parser::new(1 << 20);
        let mut buf = BytesMut::from(&b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"[..]);
        let first = p.next(&mut buf).unwrap().unwrap();
        let room = first.as_ptr();
        give_back(first);
        let second = p.next(&mut buf).unwrap().unwrap();
        assert_eq!(second, vec![Bytes::from_static(b"GET"), Bytes::from_static(b"k")]);
        assert_eq!(second.as_ptr(), room);
        // A long command's vector is not kept.
        give_back(vec![Bytes::new(); SPARE_ARG_ROOM + 1]);
        assert_eq!(SPARE.with(|s| s.borrow().len()), 0);
    }

    #[test]
    fn plain_inline_lines_split_as_quoted_ones_do() {
        for line in [&b"PING"[..], b"  GET  key ", b"a\tb\x0cc \x0bd", b"\x0c x", b"\x0bz", b"   ", b"", b"SET k v\r"] {
            let want = split_args(line).unwrap();
            let got: Vec<Vec<u8>> = split_plain(&Bytes::copy_from_slice(line), line.len()).iter().map(|a| a.to_vec()).collect();
            assert_eq!(got, want, "{}", String::from_utf8_lossy(line));
        }
        let got = parse_all(b"  SET  k\x0c v \r\nGET k\n\r\n").unwrap();
        assert_eq!(got, vec![vec![b"SET".to_vec(), b"k\x0c".to_vec(), b"v".to_vec()], vec![b"GET".to_vec(), b"k".to_vec()], vec![]]);
    }

    #[test]
    fn inline_commands() {
        let got = parse_all(b"SET k \"a b\\n\" 'c d'\r\nPING\n").unwrap();
        assert_eq!(got[0], vec![b"SET".to_vec(), b"k".to_vec(), b"a b\n".to_vec(), b"c d".to_vec()]);
        assert_eq!(got[1], vec![b"PING".to_vec()]);
        assert_eq!(split_args(b"\"\\x41B\""), Some(vec![b"AB".to_vec()]));
        assert_eq!(split_args(b"a\0b c"), Some(vec![b"a".to_vec()]));
        // Between arguments, C's isspace (redis-server 7.0: `ECHO \x0b\x0c` has
        // no argument, `ECHO "x"\x0cy` two); inside one, only space, tab, CR
        // and LF end it.
        assert_eq!(split_args(b"a \x0b\x0c c"), Some(vec![b"a".to_vec(), b"c".to_vec()]));
        assert_eq!(split_args(b"\"x\"\x0cy a\x0bb"), Some(vec![b"x".to_vec(), b"y".to_vec(), b"a\x0bb".to_vec()]));
    }

    #[test]
    fn protocol_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"*x\r\n", "ERR Protocol error: invalid multibulk length"),
            (b"*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"),
            (b"*1\r\n:1\r\n", "ERR Protocol error: expected '$', got ':'"),
            (b"*1\r\n$1\r\nab\r\n", "ERR Protocol error: invalid bulk format"),
            (b"SET \"a\r\n", "ERR Protocol error: unbalanced quotes in request"),
        ];
        for (input, want) in cases {
            let err = parse_all(input).unwrap_err();
            assert_eq!(err.to_string(), *want, "input {:?}", String::from_utf8_lossy(input));
        }
        let mut p = Parser::new(10);
        let mut buf = BytesMut::from(&b"*1\r\n$11\r\n"[..]);
        assert!(p.next(&mut buf).is_err());
    }
}
