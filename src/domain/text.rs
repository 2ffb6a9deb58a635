//! What text a person may store. Control characters other than tab and
//! line breaks are refused everywhere: PostgreSQL cannot store a NUL at
//! all, and the rest hide text from the people who read it.

/// The first character of `text` that is not stored, with its position in
/// characters: a control character other than tab and newline. A carriage
/// return is part of a line break only right before a newline (browsers
/// send `\r\n`).
pub fn forbidden_char(text: &str) -> Option<(usize, char)> {
    let mut chars = text.chars().enumerate().peekable();
    while let Some((at, c)) = chars.next() {
        let allowed = match c {
            '\t' | '\n' => true,
            '\r' => chars.peek().is_some_and(|(_, next)| *next == '\n'),
            c => !c.is_control(),
        };
        if !allowed {
            return Some((at, c));
        }
    }
    None
}

/// How a refusal of `c` in `field` reads.
pub fn forbidden_char_message(field: &str, c: char) -> String {
    format!(
        "The {} contains a control character (U+{:04X}) that cannot be stored: remove it and \
         try again",
        field.replace(['_', '.'], " "),
        u32::from(c)
    )
}

#[cfg(test)]
mod tests {
    use super::forbidden_char;

    #[test]
    fn only_tab_and_line_breaks_pass() {
        for ok in ["plain", "tab\there", "lines\nand\r\nmore", "ünïcødé ✓", ""] {
            assert_eq!(forbidden_char(ok), None, "{ok:?}");
        }
        for (bad, at, c) in [
            ("nul\0", 3, '\0'),
            ("bell\u{7}", 4, '\u{7}'),
            ("lone\rcr", 4, '\r'),
            ("end\r", 3, '\r'),
            ("del\u{7f}", 3, '\u{7f}'),
            ("c1\u{85}", 2, '\u{85}'),
            ("esc\u{1b}[31m", 3, '\u{1b}'),
        ] {
            assert_eq!(forbidden_char(bad), Some((at, c)), "{bad:?}");
        }
    }
}
