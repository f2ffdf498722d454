//! Keyword matching on lower-cased message text.

/// The first keyword of the comma-separated `list` found in `text` as a
/// whole word (or phrase), so "plan" matches "the plan?" but not "planet".
pub fn find_any<'a>(text: &str, list: &'a str) -> Option<&'a str> {
    list.split(',').map(str::trim).filter(|w| !w.is_empty()).find(|w| contains_word(text, &w.to_lowercase()))
}

pub fn list_contains(list: &str, item: &str) -> bool {
    list.split(',').any(|w| w.trim().eq_ignore_ascii_case(item.trim()))
}

fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric() && c != '👍' && c != '🙏').filter(|w| !w.is_empty())
}

/// The message only thanks or acknowledges: nothing to answer.
pub fn is_closing(text: &str) -> bool {
    const CLOSING: &[&str] = &[
        "thanks", "thank", "you", "thx", "ok", "okay", "great", "perfect", "obrigado", "obrigada", "valeu", "gracias",
        "perfeito", "perfecto", "vale", "listo", "👍", "🙏", "muito", "muchas",
    ];
    let mut any = false;
    for w in words(text) {
        if !CLOSING.contains(&w) {
            return false;
        }
        any = true;
    }
    any
}

/// The message is only a greeting.
pub fn is_greeting(text: &str) -> bool {
    const GREETING: &[&str] = &[
        "hi",
        "hello",
        "hey",
        "oi",
        "olá",
        "ola",
        "hola",
        "bom",
        "boa",
        "dia",
        "tarde",
        "noite",
        "buenos",
        "buenas",
        "días",
        "dias",
        "noches",
        "good",
        "morning",
        "afternoon",
        "evening",
    ];
    let mut any = false;
    for w in words(text) {
        if !GREETING.contains(&w) {
            return false;
        }
        any = true;
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_whole_words_only() {
        assert_eq!(find_any("qual o preço do plano?", "price,preço"), Some("preço"));
        assert_eq!(find_any("nice planet", "plan"), None);
        assert_eq!(find_any("it is not working!", "not working"), Some("not working"));
    }

    #[test]
    fn closing_and_greeting() {
        assert!(is_closing("muito obrigado!"));
        assert!(is_closing("👍"));
        assert!(!is_closing("thanks, but what is the price?"));
        assert!(is_greeting("oi, bom dia"));
        assert!(!is_greeting("oi, quero cancelar"));
        assert!(!is_greeting(""));
    }
}
