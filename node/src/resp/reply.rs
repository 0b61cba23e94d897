//! Reply writer. Command handlers write their reply straight into the
//! connection's output buffer (or a shard batch's buffer) through `Out`, which
//! knows whether the client speaks RESP2 or RESP3.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::error::CmdError;

/// An output buffer plus the protocol version of the client it is for.
pub struct Out {
    pub buf: Vec<u8>,
    pub resp3: bool,
}

/// Counts an error reply by its code (INFO errorstats): the command layer,
/// which keeps the counters, installs it when its table is built.
pub static ERROR_COUNTER: std::sync::OnceLock<fn(&[u8])> = std::sync::OnceLock::new();

/// `reply-max-bytes`: the most one command's reply may take (0: no
/// limit). The layers that own the configuration set it (`set_reply_max`).
static REPLY_MAX: AtomicUsize = AtomicUsize::new(1 << 30);

thread_local! {
    /// Where the running command's reply starts in the buffer it writes to.
    static REPLY_MARK: Cell<usize> = const { Cell::new(ReplyBudget::UNLIMITED) };
    /// Set when a bulk was refused for the budget: the command's reply is
    /// then replaced by an error (`ReplyBudget::finish`).
    static REPLY_OVER: Cell<bool> = const { Cell::new(false) };
}

pub fn set_reply_max(bytes: u64) {
    REPLY_MAX.store(usize::try_from(bytes).unwrap_or(usize::MAX), Relaxed);
}

/// The budget of one command's reply on this thread: opened where the
/// command starts writing (`mark`, the buffer's length then), finished
/// when it is done. A bulk that would take the reply past `reply-max-bytes`
/// is not written (bulks carry every value a command can repeat: MGET of
/// one big key many times, SRANDMEMBER with a huge negative count), so a
/// reply never grows far past the limit whatever the command asks for.
pub struct ReplyBudget {
    outer: usize,
}

impl ReplyBudget {
    /// A mark no buffer reaches: no limit for this command.
    pub const UNLIMITED: usize = usize::MAX;

    #[inline]
    pub fn open(mark: usize) -> ReplyBudget {
        ReplyBudget { outer: REPLY_MARK.with(|m| m.replace(mark)) }
    }

    /// Whether the reply went over (its bytes are then incomplete: the
    /// caller replaces them with `reply_too_big`).
    #[inline]
    pub fn finish(self) -> bool {
        REPLY_MARK.with(|m| m.set(self.outer));
        REPLY_OVER.with(|o| o.replace(false))
    }
}

/// Whether a reply of `bytes` is past `reply-max-bytes` (for replies put
/// together from parts, or from values read before they are written).
pub fn reply_over(bytes: usize) -> bool {
    let max = REPLY_MAX.load(Relaxed);
    max != 0 && bytes > max
}

/// Adds `n` bytes to a reply gathered before it is written (`total`);
/// the error once the total is past `reply-max-bytes`.
pub fn tally_reply(total: &mut usize, n: usize) -> Result<(), CmdError> {
    *total += n;
    if reply_over(*total) {
        return Err(reply_too_big());
    }
    Ok(())
}

/// The error a reply past `reply-max-bytes` is replaced with.
pub fn reply_too_big() -> CmdError {
    CmdError::err(format!(
        "the reply is larger than reply-max-bytes ({} bytes): ask for fewer or smaller elements",
        REPLY_MAX.load(Relaxed)
    ))
}

/// Whether `buf`, grown to `total` bytes, stays within the running
/// command's budget (checked only when the buffer must grow).
#[cold]
#[inline(never)]
fn reply_room(total: usize) -> bool {
    let max = REPLY_MAX.load(Relaxed);
    if max == 0 || total.saturating_sub(REPLY_MARK.with(Cell::get)) <= max {
        return true;
    }
    REPLY_OVER.with(|o| o.set(true));
    false
}

/// Appends `b` as a RESP bulk string (the same in RESP2 and RESP3).
#[inline]
pub fn write_bulk(buf: &mut Vec<u8>, b: &[u8]) {
    if buf.capacity() - buf.len() < b.len() + 24 && !reply_room(buf.len() + b.len()) {
        return;
    }
    buf.push(b'$');
    buf.extend_from_slice(itoa::Buffer::new().format(b.len()).as_bytes());
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(b);
    buf.extend_from_slice(b"\r\n");
}

impl Out {
    pub fn new(resp3: bool) -> Self {
        Out { buf: Vec::with_capacity(256), resp3 }
    }

    #[inline]
    fn header(&mut self, tag: u8, n: i64) {
        self.buf.push(tag);
        self.buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// A HELP reply: one simple string per line.
    pub fn help(&mut self, lines: &[&str]) {
        self.array(lines.len());
        for l in lines {
            self.simple(l);
        }
    }

    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An error reply from text that already carries its prefix (`ERR ...`),
    /// counted by its code (INFO errorstats).
    pub fn error_text(&mut self, s: &str) {
        if let Some(count) = ERROR_COUNTER.get() {
            count(s.as_bytes());
        }
        self.error_uncounted(s);
    }

    /// An error reply not counted in INFO errorstats (one whose count is
    /// left to where it is forwarded).
    pub fn error_uncounted(&mut self, s: &str) {
        self.buf.push(b'-');
        // An error line cannot contain CR or LF.
        for &b in s.as_bytes() {
            self.buf.push(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn error(&mut self, e: &CmdError) {
        self.error_text(&e.to_string());
    }

    #[inline]
    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }

    #[inline]
    pub fn bulk(&mut self, b: &[u8]) {
        write_bulk(&mut self.buf, b);
    }

    /// A bulk string holding a decimal integer.
    pub fn bulk_int(&mut self, n: i64) {
        self.bulk(itoa::Buffer::new().format(n).as_bytes());
    }

    /// The null bulk string (RESP2) / null (RESP3).
    #[inline]
    pub fn nil(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// The null array (RESP2) / null (RESP3).
    pub fn nil_array(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }

    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// A map of `n` pairs: `%n` in RESP3, a flat array of `2n` in RESP2.
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'%', n as i64);
        } else {
            self.header(b'*', 2 * n as i64);
        }
    }

    /// An out-of-band push (pub/sub messages): `>n` in RESP3, an array in
    /// RESP2.
    pub fn push(&mut self, n: usize) {
        self.header(if self.resp3 { b'>' } else { b'*' }, n as i64);
    }

    /// A set: `~n` in RESP3, an array in RESP2.
    pub fn set(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'~', n as i64);
        } else {
            self.header(b'*', n as i64);
        }
    }

    // Used by the sorted-set and scripting replies.
    #[allow(dead_code)]
    pub fn boolean(&mut self, b: bool) {
        if self.resp3 {
            self.buf.extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }

    /// A double (a sorted-set score, for instance): `,` in RESP3, a bulk
    /// string in RESP2, formatted as Redis 7.2's `addReplyDouble` does (see
    /// `d2string`).
    pub fn double(&mut self, d: f64) {
        let text = d2string(d);
        if self.resp3 {
            self.buf.push(b',');
            self.buf.extend_from_slice(&text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(&text);
        }
    }

    /// A big number: RESP3 `(`, a bulk string in RESP2.
    pub fn bignum(&mut self, digits: &str) {
        if self.resp3 {
            self.buf.push(b'(');
            self.buf.extend_from_slice(digits.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(digits.as_bytes());
        }
    }

    /// An attribute map of `n` pairs before a reply (RESP3 only).
    pub fn attribute(&mut self, n: usize) {
        self.header(b'|', n as i64);
    }

    /// Verbatim text (RESP3 `=` with the `txt` format; a bulk string in RESP2).
    pub fn verbatim(&mut self, text: &str) {
        if self.resp3 {
            self.header(b'=', text.len() as i64 + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(text.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text.as_bytes());
        }
    }
}

/// Formats an INCRBYFLOAT result (Redis's "human friendly" form): shortest
/// representation that reads back to the same value, `inf`/`-inf`/`nan`, no
/// exponent. Replies of type double use `d2string` instead.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else {
        format!("{d}")
    }
}

/// A short number rendered on the stack (no allocation per reply).
#[derive(Clone, Copy)]
pub struct NumText {
    buf: [u8; 40],
    len: u8,
}

impl NumText {
    fn new() -> Self {
        NumText { buf: [0; 40], len: 0 }
    }

    fn push(&mut self, b: u8) {
        if (self.len as usize) < self.buf.len() {
            self.buf[self.len as usize] = b;
            self.len += 1;
        }
    }

    fn extend(&mut self, s: &[u8]) {
        for &b in s {
            self.push(b);
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits, signs, '.', 'e', and letters are ever pushed.
        std::str::from_utf8(self).unwrap_or("")
    }
}

impl std::ops::Deref for NumText {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl std::fmt::Write for NumText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.extend(s.as_bytes());
        Ok(())
    }
}

/// The shortest decimal digits that read back as `d` (finite, non-zero,
/// sign ignored) and the decimal exponent of the first digit:
/// `|d| = d1.d2d3... * 10^exp`.
fn shortest_digits(d: f64) -> (NumText, i32) {
    let mut buf = ryu::Buffer::new();
    // ryu prints the shortest round-trip form: "0.1", "123.5", "1e300", "1.5e-7".
    let text = buf.format_finite(d.abs()).as_bytes();
    let (mantissa, exp) = match text.iter().position(|&c| c == b'e') {
        Some(i) => (&text[..i], std::str::from_utf8(&text[i + 1..]).ok().and_then(|e| e.parse::<i32>().ok()).unwrap_or(0)),
        None => (text, 0),
    };
    let int_len = mantissa.iter().position(|&c| c == b'.').unwrap_or(mantissa.len()) as i32;
    let mut digits = NumText::new();
    // Digits before the decimal point of the value, as leading zeros are dropped.
    let mut point = int_len + exp;
    for &c in mantissa.iter().filter(|c| c.is_ascii_digit()) {
        if digits.is_empty() && c == b'0' {
            point -= 1;
            continue;
        }
        digits.push(c);
    }
    while digits.len > 1 && digits.buf[digits.len as usize - 1] == b'0' {
        digits.len -= 1;
    }
    (digits, point - 1)
}

/// Formats a double exactly as Redis 7.2 replies with one (`d2string` in
/// `util.c`, used by `addReplyDouble` for both protocols and when a score is
/// stored in a listpack):
///
/// - `nan`, `inf`, `-inf`, `0` and `-0` spelled out;
/// - integral values within +-2^62 as plain integers (`3`, `-250`);
/// - otherwise the shortest digit string that reads back as the same double
///   (Redis 7.2 uses grisu2 here; it prints 0.1 as `0.1`, not the
///   `0.10000000000000001` of the `%.17g` used by Redis up to 7.0), laid out
///   the way Redis's `fpconv_dtoa` lays it out: plain decimals for moderate
///   exponents (`1.5`, `0.000001`, `123.456`), otherwise `1e+300`, `1.5e-7`
///   (no zero padding of the exponent).
pub fn d2string(d: f64) -> NumText {
    let mut out = NumText::new();
    if let Some(text) = special_double(d) {
        out.extend(text);
        return out;
    }
    const HALF: f64 = (i64::MAX / 2) as f64;
    if (-HALF..=HALF).contains(&d) && d.fract() == 0.0 {
        out.extend(itoa::Buffer::new().format(d as i64).as_bytes());
        return out;
    }
    if d < 0.0 {
        out.push(b'-');
    }
    let (digits, e) = shortest_digits(d);
    let n = digits.len() as i32;
    // fpconv's terms: the value is `digits * 10^k`.
    let k = e - (n - 1);
    let exp = e.abs();
    if k >= 0 && exp < n + 7 {
        out.extend(&digits);
        for _ in 0..k {
            out.push(b'0');
        }
    } else if k < 0 && (k > -7 || exp < 4) {
        let offset = n + k;
        if offset <= 0 {
            out.extend(b"0.");
            for _ in 0..-offset {
                out.push(b'0');
            }
            out.extend(&digits);
        } else {
            out.extend(&digits[..offset as usize]);
            out.push(b'.');
            out.extend(&digits[offset as usize..]);
        }
    } else {
        out.push(digits[0]);
        if n > 1 {
            out.push(b'.');
            out.extend(&digits[1..]);
        }
        out.push(b'e');
        out.push(if e < 0 { b'-' } else { b'+' });
        out.extend(itoa::Buffer::new().format(exp).as_bytes());
    }
    out
}

/// The text of the doubles both formatters print the same way: NaN, the
/// infinities and the zeros.
fn special_double(d: f64) -> Option<&'static [u8]> {
    if d.is_nan() {
        Some(b"nan")
    } else if d.is_infinite() {
        Some(if d > 0.0 { b"inf" } else { b"-inf" })
    } else if d == 0.0 {
        Some(if d.is_sign_negative() { b"-0" } else { b"0" })
    } else {
        None
    }
}

/// C's `printf("%.17g")`: 17 significant digits, trailing zeros removed,
/// exponent form (at least two exponent digits) below 1e-4 or from 1e17.
/// Redis uses it (through `ld2string`) for the scores ZSCAN returns from a
/// skiplist-encoded sorted set.
pub fn format_g17(d: f64) -> NumText {
    use std::fmt::Write;
    let mut out = NumText::new();
    if let Some(text) = special_double(d) {
        out.extend(text);
        return out;
    }
    let mut sci = NumText::new();
    let _ = write!(sci, "{:.16e}", d.abs());
    let text = sci.as_str();
    let (mantissa, exp) = text.split_once('e').unwrap_or((text, "0"));
    let e: i32 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa.bytes().filter(|b| b.is_ascii_digit()).collect();
    if d < 0.0 {
        out.push(b'-');
    }
    if (-4..17).contains(&e) {
        // Fixed notation with 17 significant digits, trailing zeros removed.
        let mut s: Vec<u8> = Vec::with_capacity(40);
        if e < 0 {
            s.extend_from_slice(b"0.");
            s.extend(std::iter::repeat_n(b'0', (-e - 1) as usize));
            s.extend_from_slice(&digits);
        } else {
            let int_len = (e + 1) as usize;
            s.extend_from_slice(&digits[..int_len]);
            s.push(b'.');
            s.extend_from_slice(&digits[int_len..]);
        }
        while s.last() == Some(&b'0') {
            s.pop();
        }
        if s.last() == Some(&b'.') {
            s.pop();
        }
        out.extend(&s);
    } else {
        let mut m: Vec<u8> = digits[1..].to_vec();
        while m.last() == Some(&b'0') {
            m.pop();
        }
        out.push(digits[0]);
        if !m.is_empty() {
            out.push(b'.');
            out.extend(&m);
        }
        out.push(b'e');
        out.push(if e < 0 { b'-' } else { b'+' });
        if e.abs() < 10 {
            out.push(b'0');
        }
        out.extend(itoa::Buffer::new().format(e.abs()).as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_and_resp3_shapes() {
        let mut o = Out::new(false);
        o.nil();
        o.map(1);
        o.boolean(true);
        o.double(1.5);
        assert_eq!(o.buf, b"$-1\r\n*2\r\n:1\r\n$3\r\n1.5\r\n");
        let mut o = Out::new(true);
        o.nil();
        o.map(1);
        o.boolean(true);
        o.double(1.5);
        o.verbatim("hi");
        assert_eq!(o.buf, b"_\r\n%1\r\n#t\r\n,1.5\r\n=6\r\ntxt:hi\r\n");
    }

    #[test]
    fn doubles() {
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(10.5), "10.5");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(-0.1), "-0.1");
    }

    #[test]
    fn redis_72_double_replies() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-250.0, "-250"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (-0.1, "-0.1"),
            (1.0 / 3.0, "0.3333333333333333"),
            (0.000001, "0.000001"),
            (1.5e-7, "1.5e-7"),
            (1e-7, "1e-7"),
            (1e300, "1e+300"),
            (-1e300, "-1e+300"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (1e20, "1e+20"),
            (5e18, "5e+18"),
            (4e18, "4000000000000000000"),
            (1.2345678901234567e19, "12345678901234567000"),
            (123.456, "123.456"),
            (1234.5678901234, "1234.5678901234"),
            (3.0e-5, "0.00003"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (d, want) in cases {
            assert_eq!(d2string(*d).as_str(), *want, "{d:e}");
        }
    }

    #[test]
    fn printf_g17() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (1.0, "1"),
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (1e300, "1.0000000000000001e+300"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (-2.5, "-2.5"),
            (123456789.125, "123456789.125"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (d, want) in cases {
            assert_eq!(format_g17(*d).as_str(), *want, "{d:e}");
        }
    }

    #[test]
    fn errors_stay_on_one_line() {
        let mut o = Out::new(false);
        o.error_text("ERR a\r\nb");
        assert_eq!(o.buf, b"-ERR a  b\r\n");
    }
}
