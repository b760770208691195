//! Small text helpers shared by every layer: number grouping for people to read, and text from
//! a file made safe to print on a terminal.

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `text` with control characters escaped (`\u{1b}`, `\n`), so text read from a file (a
/// tampered report.json, a forged sweep.json) cannot move the cursor, recolour or retitle a
/// terminal when printed.
pub fn printable(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("plain · text"), "plain · text");
        assert_eq!(
            printable("\u{1b}]0;owned\u{7}x\ny"),
            "\\u{1b}]0;owned\\u{7}x\\ny"
        );
        assert!(!printable("\u{9b}31m").chars().any(char::is_control));
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
