//! Container names: validation (Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`) and random
//! `adjective_surname` names for containers created without one.

use rand::seq::IndexedRandom;

use crate::error::ApiError;

/// Validates a requested name and returns it with Docker's leading `/`.
pub fn normalize(requested: &str) -> Result<String, ApiError> {
    let bare = requested.strip_prefix('/').unwrap_or(requested);
    if !is_valid(bare) {
        return Err(ApiError::invalid(format!(
            "Invalid container name ({requested}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    Ok(format!("/{bare}"))
}

fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    let rest: Vec<char> = chars.collect();
    !rest.is_empty()
        && rest
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

const ADJECTIVES: &[&str] = &[
    "admiring",
    "adoring",
    "affectionate",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "beautiful",
    "blissful",
    "bold",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "condescending",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "recursing",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "unruffled",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

const SURNAMES: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "almeida",
    "archimedes",
    "ardinghelli",
    "babbage",
    "banach",
    "bardeen",
    "bartik",
    "bassi",
    "bell",
    "benz",
    "bhabha",
    "black",
    "blackwell",
    "bohr",
    "booth",
    "borg",
    "bose",
    "boyd",
    "brahmagupta",
    "brattain",
    "brown",
    "carson",
    "cerf",
    "chandrasekhar",
    "chaplygin",
    "clarke",
    "colden",
    "cori",
    "cray",
    "curie",
    "darwin",
    "davinci",
    "dijkstra",
    "dubinsky",
    "easley",
    "einstein",
    "elion",
    "engelbart",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "goldberg",
    "goldstine",
    "goodall",
    "hamilton",
    "hawking",
    "heisenberg",
    "hermann",
    "hodgkin",
    "hofstadter",
    "hopper",
    "hypatia",
    "jackson",
    "jang",
    "jennings",
    "johnson",
    "kalam",
    "keller",
    "kepler",
    "khorana",
    "kilby",
    "knuth",
    "lalande",
    "lamarr",
    "leakey",
    "leavitt",
    "lovelace",
    "lumiere",
    "mayer",
    "mccarthy",
    "mcclintock",
    "meitner",
    "mendel",
    "mirzakhani",
    "montalcini",
    "morse",
    "napier",
    "newton",
    "nobel",
    "noether",
    "pascal",
    "pasteur",
    "perlman",
    "pike",
    "poincare",
    "ptolemy",
    "raman",
    "ramanujan",
    "ritchie",
    "rosalind",
    "shannon",
    "shockley",
    "sinoussi",
    "stonebraker",
    "swartz",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "varahamihira",
    "villani",
    "wilbur",
    "wiles",
    "williams",
    "wright",
    "yalow",
    "yonath",
];

/// A random `adjective_surname` (Docker's `namesgenerator` style), with a digit appended
/// on retries (`retry > 0`) as Docker does.
pub fn random_name(retry: u32) -> String {
    let mut rng = rand::rng();
    let adjective = ADJECTIVES.choose(&mut rng).copied().unwrap_or("happy");
    let surname = SURNAMES.choose(&mut rng).copied().unwrap_or("turing");
    if retry > 0 {
        format!("{adjective}_{surname}{}", rand::random_range(0..10))
    } else {
        format!("{adjective}_{surname}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_get_a_slash() {
        assert_eq!(normalize("c1").unwrap(), "/c1");
        assert_eq!(normalize("/c1").unwrap(), "/c1");
        assert_eq!(normalize("a.b-c_d").unwrap(), "/a.b-c_d");
    }

    #[test]
    fn invalid_names_get_dockers_message() {
        for bad in ["a", "-ab", "_ab", "a b", "a/b", "", "/", "ab!"] {
            let e = normalize(bad).unwrap_err();
            assert_eq!(
                e.message,
                format!(
                    "Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )
            );
            assert_eq!(e.kind, berth_api::ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn random_names_are_valid_and_shaped() {
        for retry in 0..20 {
            let n = random_name(retry);
            assert!(normalize(&n).is_ok(), "{n}");
            assert!(n.contains('_'));
        }
    }
}
