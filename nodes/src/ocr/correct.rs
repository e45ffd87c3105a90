//! Post-correction against what each class can say: speed values, STOP,
//! ZONE 30, street names, and `TOWN 12 km` lines of direction panels. A read
//! text changes only when it is a few edits away from a known one.
//!
//! Speeds, STOP and ZONE 30 are closed sets: every value a sign can carry
//! is listed, so a valid read is never replaced. Town and street names are
//! not: no list holds every name a sign may carry, and a right read of a
//! name missing from the list would be snapped to a close one that is there
//! (measured: 22 right reads of 500 turned wrong with a list disjoint from
//! the names drawn, BENCHMARKS.md). So by default no name list is known and
//! names are only cleaned (punctuation, the `km` unit); give `towns` or
//! `streets` only when the list is complete for where the images come from.

use serde::Deserialize;

use super::text::{normalize, snap};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorrectionParams {
    pub enabled: bool,
    pub speed_values: Vec<u32>,
    pub words: Vec<String>,
    pub zones: Vec<String>,
    /// Town names (direction panels) reads snap to; none by default. Only
    /// a complete list: a right read of a town missing from it may be
    /// snapped to a close one.
    pub towns: Vec<String>,
    /// Street names reads snap to; none by default (as `towns`).
    pub streets: Vec<String>,
}

/// Every speed a European speed-limit sign carries (km/h), not only the
/// values the scene generator draws: a valid read is never replaced by
/// another value.
pub const SPEED_VALUES: [u32; 18] = [
    5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60, 70, 80, 90, 100, 110, 120, 130,
];

impl Default for CorrectionParams {
    fn default() -> Self {
        CorrectionParams {
            enabled: true,
            speed_values: SPEED_VALUES.to_vec(),
            words: vec!["STOP".into()],
            zones: vec!["ZONE 30".into()],
            towns: Vec::new(),
            streets: Vec::new(),
        }
    }
}

/// The vocabularies, normalised once.
pub struct Vocabulary {
    enabled: bool,
    speeds: Vec<String>,
    words: Vec<String>,
    zones: Vec<String>,
    towns: Vec<String>,
    streets: Vec<String>,
}

impl Vocabulary {
    pub fn new(p: &CorrectionParams) -> Vocabulary {
        let norm = |v: &[String]| v.iter().map(|s| normalize(s)).collect();
        Vocabulary {
            enabled: p.enabled,
            speeds: p.speed_values.iter().map(u32::to_string).collect(),
            words: norm(&p.words),
            zones: norm(&p.zones),
            towns: norm(&p.towns),
            streets: norm(&p.streets),
        }
    }

    /// The corrected text of a read of `class`: the read normalised when
    /// correction is off; otherwise snapped to the class's vocabulary when
    /// close, else normalised (plates also lose punctuation at their ends,
    /// direction panels the punctuation no town name has).
    pub fn correct(&self, class: &str, read: &str) -> String {
        let read = normalize(read);
        if !self.enabled || read.is_empty() {
            return read;
        }
        // Plate edges and brackets read as punctuation around the text.
        let trimmed = read
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_string();
        let pick = |list: &[String]| {
            snap(&trimmed, list.iter().map(String::as_str)).unwrap_or_else(|| trimmed.clone())
        };
        match class {
            "speed_limit" => self.speed(&read),
            "stop" => pick(&self.words),
            "zone_30" => pick(&self.zones),
            "street_name" => pick(&self.streets),
            "direction" => self.direction(&read),
            _ => read,
        }
    }

    /// A speed: the read's digits, with letters that look like digits read
    /// as those digits when they stand after the first digit (`5O`, `1L0`)
    /// and that gives a valid speed; before it they are the sign's ring
    /// (`|20`, `I10`), never a digit. A valid speed is kept as read; anything
    /// else snaps to the one speed a single edit away, or stays as read when
    /// none or several are.
    fn speed(&self, read: &str) -> String {
        let valid = |s: &String| self.speeds.contains(s);
        let digits: String = read.chars().filter(char::is_ascii_digit).collect();
        let number = read
            .find(|c: char| c.is_ascii_digit())
            .map_or("", |at| &read[at..]);
        let lookalike: String = number
            .chars()
            .filter_map(|c| match c {
                '0'..='9' => Some(c),
                'O' | 'Q' => Some('0'),
                'I' | 'L' => Some('1'),
                'Z' => Some('2'),
                'S' => Some('5'),
                'B' => Some('8'),
                _ => None,
            })
            .collect();
        if valid(&lookalike) {
            return lookalike;
        }
        if valid(&digits) {
            return digits;
        }
        snap(&digits, self.speeds.iter().map(String::as_str)).unwrap_or(digits)
    }

    /// `TOWN 12 km` lines, one after the other: each town snapped to the
    /// list, its number kept, `km` fixed when a short word that begins no
    /// town follows the number. Town words lose the punctuation no town
    /// name has (a pole or an edge read as `|` or `.`).
    fn direction(&self, read: &str) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut town: Vec<String> = Vec::new();
        let mut words = read.split(' ').peekable();
        while let Some(word) = words.next() {
            // A distance is mostly digits; a town misread with a digit is not.
            let digits = word.chars().filter(char::is_ascii_digit).count();
            if digits == 0 || digits * 2 < word.chars().count() {
                let letters: String = word
                    .chars()
                    .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '\''))
                    .collect();
                if !letters.is_empty() {
                    town.push(letters);
                }
                continue;
            }
            self.push_town(&mut out, &mut town);
            out.push(word.chars().filter(char::is_ascii_digit).collect());
            if let Some(unit) = words.peek().copied() {
                let after = words.clone().nth(1);
                if self.is_unit(unit, after) {
                    out.push("KM".into());
                    words.next();
                }
            }
        }
        self.push_town(&mut out, &mut town);
        out.join(" ")
    }

    /// Whether a word after a distance is its unit: close to `KM`; or 2-3
    /// letters that begin no town (`LE` of `LE MANS` does), at the end of
    /// the read or before a known town (a short town name of its own, as
    /// `DAX 40`, is followed by its distance, not by a town).
    fn is_unit(&self, word: &str, after: Option<&str>) -> bool {
        if snap(word, ["KM"]).is_some() && !self.towns.iter().any(|t| t == word) {
            return true;
        }
        let length = word.chars().count();
        let begins_a_town = |w: &str| {
            self.towns.iter().any(|t| {
                let first = t.split([' ', '-']).next().unwrap_or_default();
                snap(w, [first]).is_some()
            })
        };
        (2..=3).contains(&length)
            && !word.chars().any(|c| c.is_ascii_digit())
            && !begins_a_town(word)
            && after.is_none_or(begins_a_town)
    }

    fn push_town(&self, out: &mut Vec<String>, town: &mut Vec<String>) {
        if town.is_empty() {
            return;
        }
        let name = town.join(" ");
        town.clear();
        out.push(snap(&name, self.towns.iter().map(String::as_str)).unwrap_or(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A complete list of the names the images carry (the generator's).
    fn closed_lists() -> CorrectionParams {
        CorrectionParams {
            towns: crate::synth::default_towns(),
            streets: crate::synth::default_streets(),
            ..CorrectionParams::default()
        }
    }

    /// Each `(class, read, corrected)` case through `v`.
    fn assert_corrections(v: &Vocabulary, cases: &[(&str, &str, &str)]) {
        for (class, read, corrected) in cases {
            assert_eq!(v.correct(class, read), *corrected, "{class}: {read}");
        }
    }

    #[test]
    fn names_are_only_cleaned_without_a_list() {
        let v = Vocabulary::new(&CorrectionParams::default());
        let cases = [
            // Closed sets still snap.
            ("speed_limit", "5O", "50"),
            ("stop", "ST0P", "STOP"),
            ("zone_30", "Z0NE 30", "ZONE 30"),
            // A name stays as read, whichever list it might be close to...
            ("street_name", "RUE PASTEIR", "RUE PASTEIR"),
            ("direction", "PARLS 5", "PARLS 5"),
            ("direction", "MONTREUX 5", "MONTREUX 5"),
            // ... cleaned of the plate's border and a pole, its unit fixed.
            ("street_name", "[RUE DES LILAS}", "RUE DES LILAS"),
            ("direction", "LYON 12 kn | MACON 61", "LYON 12 KM MACON 61"),
        ];
        assert_corrections(&v, &cases);
    }

    #[test]
    fn corrections_per_class() {
        let v = Vocabulary::new(&closed_lists());
        let cases = [
            ("speed_limit", "5O", "50"),
            ("speed_limit", "(70)", "70"),
            ("speed_limit", "110", "110"),
            // Valid speeds stay what was read, whatever the generator draws.
            ("speed_limit", "40", "40"),
            ("speed_limit", "5", "5"),
            ("speed_limit", "100", "100"),
            ("speed_limit", "(30)", "30"),
            ("speed_limit", "O50O", "50"),
            // A ring read before the number is no digit; D is no zero.
            ("speed_limit", "|20", "20"),
            ("speed_limit", "I10", "10"),
            ("speed_limit", "5D", "5"),
            ("speed_limit", "1L0", "110"),
            // One speed an edit away is taken; several are not guessed at.
            ("speed_limit", "1110", "110"),
            ("speed_limit", "1300", "1300"),
            ("speed_limit", "7", "7"),
            ("stop", "ST0P", "STOP"),
            ("stop", "sTOP", "STOP"),
            ("zone_30", "Z0NE 30", "ZONE 30"),
            ("street_name", "RUE PASTEIR", "RUE PASTEUR"),
            // A plate's border read as brackets around its name.
            (
                "street_name",
                "[ROE OF TA REPUBLIQUE}",
                "RUE DE LA RÉPUBLIQUE",
            ),
            ("street_name", "“RUE X|", "RUE X"),
            ("direction", "LY0N 12 kn", "LYON 12 KM"),
            ("direction", "PARIS 5", "PARIS 5"),
            ("direction", "LYON 12 km PAR1S 5", "LYON 12 KM PARIS 5"),
            ("direction", "LY0N 12 km PARLS 5", "LYON 12 KM PARIS 5"),
            // Punctuation read from an edge or a pole.
            ("direction", "LF. MANS 80", "LE MANS 80"),
            (
                "direction",
                "TOULON 25 KM | MACON 61",
                "TOULON 25 KM MÂCON 61",
            ),
            // `km` read as a short word, before a town or at the end...
            (
                "direction",
                "TOULOUSE 61 FON STRASBOURG 44",
                "TOULOUSE 61 KM STRASBOURG 44",
            ),
            ("direction", "REIMS 70 KEN", "REIMS 70 KM"),
            // ... but not a short town the list lacks (its distance follows),
            // nor the first word of a town.
            ("direction", "PAU 12 DAX 40", "PAU 12 DAX 40"),
            ("direction", "PARIS 5 LE MANS 8", "PARIS 5 LE MANS 8"),
            ("yield", "abc", "ABC"),
        ];
        assert_corrections(&v, &cases);
        let off = Vocabulary::new(&CorrectionParams {
            enabled: false,
            ..closed_lists()
        });
        assert_eq!(off.correct("stop", "ST0P"), "ST0P");
    }
}
