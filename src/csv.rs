//! CSV for the console's exports (customers in promo-service, the request log in
//! gateway-rest): one quoting rule, so that no export can hand a spreadsheet a formula.

/// One CSV cell: quoted, quotes doubled, and a leading `= + - @` (or tab/CR) neutralised with
/// an apostrophe, so a spreadsheet never reads a value (an e-mail, a model name an operator
/// typed) as a formula (CSV injection).
pub fn cell(v: &str) -> String {
    let guarded = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

/// One CSV line of `cells` (each through [`cell`]), ended by CRLF as RFC 4180 says.
pub fn line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut out = String::new();
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&cell(c.as_ref()));
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::{cell, line};

    #[test]
    fn formulas_are_neutralised_and_quotes_doubled() {
        assert_eq!(cell("a@b.dz"), "\"a@b.dz\"");
        assert_eq!(cell("=1+1"), "\"'=1+1\"");
        assert_eq!(cell("+33"), "\"'+33\"");
        assert_eq!(cell("-2"), "\"'-2\"");
        assert_eq!(cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(cell("\tx"), "\"'\tx\"");
        assert_eq!(cell("dit \"non\""), "\"dit \"\"non\"\"\"");
        assert_eq!(cell("é,ü"), "\"é,ü\"");
        assert_eq!(line(&["a", "=b"]), "\"a\",\"'=b\"\r\n");
    }
}
