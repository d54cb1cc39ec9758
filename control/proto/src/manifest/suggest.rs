//! "Did you mean …?" for unknown keys: the nearest known key by edit distance.
//!
//! A candidate is suggested when its distance to the typo is at most 2 (or a third of the
//! typo's length, for long keys) and smaller than the typo itself, so `replica` → `replicas`
//! but `x` suggests nothing. Case differences count as edits made cheaply: `Exec` → `exec`.

/// The nearest of `candidates` to `typo`, if near enough; ties go to the earlier candidate.
pub fn nearest<'a>(typo: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let len = typo.chars().count();
    let limit = 2.max(len / 3);
    let lower = typo.to_lowercase();
    candidates
        .iter()
        .map(|&c| (edit_distance(&lower, c), c))
        .filter(|&(d, _)| d <= limit && d < len)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters (insert, delete, substitute, and swap of neighbours).
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j]; only the last three rows are kept.
    let width = b.len() + 1;
    let mut before: Vec<usize> = vec![0; width];
    let mut prev: Vec<usize> = (0..width).collect();
    let mut cur: Vec<usize> = vec![0; width];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            let mut best = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && a.get(i - 1) == Some(&cb) && b.get(j - 1) == Some(&ca) {
                best = best.min(before[j - 1] + 1);
            }
            cur[j + 1] = best;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP_KEYS: &[&str] = &[
        "exec", "bin", "args", "type", "port", "replicas", "ram", "cpu", "health", "scale",
    ];

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("replica", "replicas"), 1);
        assert_eq!(edit_distance("helath", "health"), 1);
        assert_eq!(edit_distance("héalth", "health"), 1);
    }

    #[test]
    fn suggestions() {
        assert_eq!(nearest("replica", APP_KEYS), Some("replicas"));
        assert_eq!(nearest("Exec", APP_KEYS), Some("exec"));
        assert_eq!(nearest("helth", APP_KEYS), Some("health"));
        assert_eq!(nearest("prot", APP_KEYS), Some("port"));
        assert_eq!(nearest("x", APP_KEYS), None);
        assert_eq!(nearest("memory", APP_KEYS), None);
        assert_eq!(nearest("completely-unrelated", APP_KEYS), None);
        assert_eq!(nearest("", APP_KEYS), None);
    }
}
