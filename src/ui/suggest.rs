//! "Did you mean …": the closest known name to a mistyped one.

/// The candidate closest to `typed` by edit distance, if it is close enough to be a likely typo
/// (at most 2 edits, and fewer than the length of the typed word), or the only candidate that
/// starts with `typed`.
pub fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.to_ascii_lowercase();
    if typed.is_empty() {
        return None;
    }
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let mut prefixed = candidates.iter().filter(|c| c.starts_with(typed.as_str()));
    if let (Some(only), None) = (prefixed.next(), prefixed.next()) {
        return Some(only);
    }
    let limit = 2.min(typed.chars().count().saturating_sub(1));
    candidates
        .iter()
        .map(|c| (edit_distance(&typed, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance with transpositions counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &["status", "help", "quit", "join", "leave", "login", "logout"];

    #[test]
    fn typos_find_their_command() {
        assert_eq!(closest("stauts", NAMES.iter().copied()), Some("status"));
        assert_eq!(closest("hlep", NAMES.iter().copied()), Some("help"));
        assert_eq!(closest("qiut", NAMES.iter().copied()), Some("quit"));
        assert_eq!(closest("sta", NAMES.iter().copied()), Some("status"));
    }

    #[test]
    fn far_or_ambiguous_words_find_nothing() {
        assert_eq!(closest("xyzzy", NAMES.iter().copied()), None);
        assert_eq!(closest("lo", NAMES.iter().copied()), None);
        assert_eq!(closest("", NAMES.iter().copied()), None);
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
