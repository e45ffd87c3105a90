//! Text comparison and post-correction: Levenshtein distance, character and
//! word error rates, and snapping a read text to a class's vocabulary when it
//! is only a small edit away.

/// Edit distance between two sequences (insertions, deletions, substitutions).
pub fn levenshtein<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(x != y);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Upper case, whitespace runs collapsed: how texts are compared.
pub fn normalize(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// Character edits between `read` and `truth` (both normalised), and the
/// truth's length in characters.
pub fn char_errors(read: &str, truth: &str) -> (usize, usize) {
    let read: Vec<char> = normalize(read).chars().collect();
    let truth: Vec<char> = normalize(truth).chars().collect();
    (levenshtein(&read, &truth), truth.len())
}

/// Word edits between `read` and `truth`, and the truth's word count.
pub fn word_errors(read: &str, truth: &str) -> (usize, usize) {
    let read = normalize(read);
    let truth = normalize(truth);
    let read: Vec<&str> = read.split(' ').filter(|w| !w.is_empty()).collect();
    let truth: Vec<&str> = truth.split(' ').filter(|w| !w.is_empty()).collect();
    (levenshtein(&read, &truth), truth.len())
}

/// The vocabulary entry closest to `read`, when its distance is at most a
/// quarter of the entry's length (and at least 1 edit is allowed); `None`
/// otherwise. A read that is itself an entry stays as it is, and a read
/// equally close to two different entries is left alone: the image does not
/// say which one it shows, and a correction must never trade a read for a
/// guess.
pub fn snap<'a>(read: &str, vocabulary: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let read_chars: Vec<char> = normalize(read).chars().collect();
    if read_chars.is_empty() {
        return None;
    }
    // (distance, entry, whether another entry is as close)
    let mut best: Option<(usize, String, bool)> = None;
    for entry in vocabulary {
        let entry = normalize(entry);
        let chars: Vec<char> = entry.chars().collect();
        let distance = levenshtein(&read_chars, &chars);
        let allowed = (chars.len() / 4).max(1);
        if distance > allowed {
            continue;
        }
        match &mut best {
            Some((d, _, _)) if distance > *d => {}
            Some((d, kept, tied)) if distance == *d => *tied |= *kept != entry,
            _ => best = Some((distance, entry, false)),
        }
    }
    match best {
        Some((0, entry, _)) => Some(entry),
        Some((_, entry, false)) => Some(entry),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(levenshtein(b"kitten", b"sitting"), 3);
        assert_eq!(levenshtein::<u8>(b"", b"abc"), 3);
        assert_eq!(levenshtein(b"same", b"same"), 0);
        assert_eq!(char_errors("stop", "STOP"), (0, 4));
        assert_eq!(char_errors("ST0P", "STOP"), (1, 4));
        assert_eq!(word_errors("RUE  PASTEUR", "RUE PASTEUR"), (0, 2));
        assert_eq!(word_errors("RUE PASTEVR", "RUE PASTEUR"), (1, 2));
    }

    #[test]
    fn snapping_keeps_valid_reads_and_never_guesses_between_entries() {
        let speeds = ["30", "40", "50"];
        // A read that is an entry stays, even next to others.
        assert_eq!(snap("40", speeds).as_deref(), Some("40"));
        // Equally close to two entries: which one the image shows is unknown.
        assert_eq!(snap("4", ["40", "45"]), None);
        assert_eq!(snap("60", speeds), None);
        // One entry closest: taken.
        assert_eq!(snap("400", speeds).as_deref(), Some("40"));
        // The same entry listed twice is no tie.
        assert_eq!(snap("ST0P", ["STOP", "STOP"]).as_deref(), Some("STOP"));
    }

    #[test]
    fn snapping_fixes_small_errors_only() {
        let vocabulary = ["STOP", "ZONE 30", "RUE PASTEUR"];
        assert_eq!(snap("ST0P", vocabulary).as_deref(), Some("STOP"));
        assert_eq!(snap("ZONE 3O", vocabulary).as_deref(), Some("ZONE 30"));
        assert_eq!(
            snap("RUE PASTFUR", vocabulary).as_deref(),
            Some("RUE PASTEUR")
        );
        assert_eq!(snap("HELLO", vocabulary), None);
        assert_eq!(snap("", vocabulary), None);
    }
}
