//! "Did you mean": the closest names to a misspelt one.

/// Up to three candidates close to `wanted`, closest first: similar
/// spelling (Jaro-Winkler, as clap and cargo do) or containing it
/// (`status` → `query-status`).
pub(crate) fn similar<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .filter_map(|candidate| {
            let mut score = strsim::jaro_winkler(wanted, candidate);
            if wanted.len() >= 3 && candidate.contains(wanted) {
                score = score.max(0.9);
            }
            (score >= 0.8).then_some((score, candidate))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(3).map(|(_, name)| name).collect()
}

/// `"; did you mean `a` or `b`?"`, or nothing when no name is close.
pub(crate) fn did_you_mean(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        [first @ .., last] => format!("; did you mean {} or {last}?", first.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMANDS: [&str; 6] = [
        "query-status",
        "query-stats",
        "query-version",
        "device_add",
        "device_del",
        "quit",
    ];

    #[test]
    fn misspellings_and_fragments_find_their_names() {
        // A transposition: both close names are offered.
        let got = similar("query-stauts", COMMANDS);
        assert!(
            got.contains(&"query-status") && got.contains(&"query-stats"),
            "{got:?}"
        );
        assert_eq!(similar("status", COMMANDS).first(), Some(&"query-status"));
        assert_eq!(similar("device-add", COMMANDS).first(), Some(&"device_add"));
        assert_eq!(similar("xyzzy", COMMANDS), Vec::<&str>::new());
    }

    #[test]
    fn the_hint_reads_as_a_sentence() {
        assert_eq!(did_you_mean(&[]), "");
        assert_eq!(did_you_mean(&["a"]), "; did you mean `a`?");
        assert_eq!(
            did_you_mean(&["a", "b", "c"]),
            "; did you mean `a`, `b` or `c`?"
        );
    }
}
