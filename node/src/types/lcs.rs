//! The longest common subsequence of two strings (the LCS command): its
//! length, one LCS, and the matching ranges in both strings, reported from
//! the end of the strings towards their start, as Redis does.

/// A run of consecutive matching bytes: inclusive byte ranges in the first
/// and second string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub a: (usize, usize),
    pub b: (usize, usize),
}

impl Match {
    pub fn len(&self) -> usize {
        self.a.1 - self.a.0 + 1
    }
}

pub struct Lcs {
    pub string: Vec<u8>,
    /// Runs of the LCS, last run first.
    pub matches: Vec<Match>,
}

/// Bytes of the DP table a pair of strings needs (the caller refuses
/// sizes it will not allocate).
pub fn table_bytes(a: usize, b: usize) -> Option<usize> {
    (a + 1).checked_mul(b + 1)?.checked_mul(4)
}

/// Computes the LCS of `a` and `b` with the classic O(len(a) * len(b))
/// table, then walks back from the ends collecting runs.
pub fn lcs(a: &[u8], b: &[u8]) -> Lcs {
    let w = b.len() + 1;
    let mut t = vec![0u32; (a.len() + 1) * w];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            t[i * w + j] = if a[i - 1] == b[j - 1] { t[(i - 1) * w + j - 1] + 1 } else { t[(i - 1) * w + j].max(t[i * w + j - 1]) };
        }
    }
    let len = t[a.len() * w + b.len()] as usize;
    let mut string = vec![0u8; len];
    let mut matches = Vec::new();
    let (mut i, mut j, mut k) = (a.len(), b.len(), len);
    let mut run: Option<Match> = None;
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            string[k - 1] = a[i - 1];
            k -= 1;
            run = match run {
                // Extends the current run backwards.
                Some(m) if m.a.0 == i && m.b.0 == j => Some(Match { a: (i - 1, m.a.1), b: (j - 1, m.b.1) }),
                Some(m) => {
                    matches.push(m);
                    Some(Match { a: (i - 1, i - 1), b: (j - 1, j - 1) })
                }
                None => Some(Match { a: (i - 1, i - 1), b: (j - 1, j - 1) }),
            };
            i -= 1;
            j -= 1;
        } else if t[(i - 1) * w + j] > t[i * w + j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    if let Some(m) = run {
        matches.push(m);
    }
    Lcs { string, matches }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example() {
        let r = lcs(b"ohmytext", b"mynewtext");
        assert_eq!(r.string, b"mytext");
        assert_eq!(r.matches, vec![Match { a: (4, 7), b: (5, 8) }, Match { a: (2, 3), b: (0, 1) }]);
        assert_eq!(r.matches[0].len(), 4);
        let e = lcs(b"", b"abc");
        assert!(e.string.is_empty() && e.matches.is_empty());
    }
}
