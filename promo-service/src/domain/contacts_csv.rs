//! Reading the operator's contact file (CSV) into checked rows, without I/O.
//!
//! The file is RFC 4180 as spreadsheets write it: a header row naming the columns (`email`
//! required; `name`, `source`, `consent_at` optional, in any order, any case, French names
//! accepted), `,` or `;` as separator (guessed from the header: French spreadsheets write `;`),
//! quoted fields with doubled quotes and line breaks inside, CRLF or LF, an optional UTF-8 BOM.
//! Each malformed row becomes an [`ImportProblem`] naming its line; the others are imported.
//! Addresses take the one canonical form of [`Email`], so the merge by address here is the same
//! "one mailbox" rule as accounts, and a contact who later signs up is recognised as a customer.

use chrono::{NaiveDate, NaiveDateTime};

use super::Email;

/// Largest file accepted (bytes): about 5 000 contacts, far above the ~280 of the launch list,
/// and under the gRPC message limit with room to spare.
pub const MAX_CSV_BYTES: usize = 512 * 1024;
/// Longest field kept (characters) for name and source; longer ones are a problem of the row.
pub const MAX_FIELD_CHARS: usize = 200;
/// Most problems listed in the answer (the count of refused rows stays exact).
pub const MAX_PROBLEMS: usize = 500;

/// A row that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRow {
    pub line: u32,
    pub email: Email,
    pub name: String,
    pub source: String,
    /// Milliseconds since the epoch; None: no consent recorded.
    pub consent_at: Option<i64>,
}

/// A row refused, with the 1-based line where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProblem {
    pub line: u32,
    pub reason: String,
}

/// What the file holds.
#[derive(Debug, Default)]
pub struct ParsedFile {
    pub rows: Vec<ContactRow>,
    pub problems: Vec<ImportProblem>,
    /// Problems past [`MAX_PROBLEMS`] (counted, not listed).
    pub more_problems: u32,
    /// Data rows read (blank lines not counted).
    pub read: u32,
}

impl ParsedFile {
    fn problem(&mut self, line: u32, reason: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(ImportProblem { line, reason });
        } else {
            self.more_problems += 1;
        }
    }
}

/// Why the whole file is refused (nothing imported).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FileError {
    #[error("fichier trop volumineux : {0} octets (maximum {MAX_CSV_BYTES})")]
    TooLarge(usize),
    #[error("fichier vide")]
    Empty,
    #[error(
        "la première ligne doit nommer les colonnes, dont « email » (reçu : {0:?}) ; colonnes possibles : email, name, source, consent_at"
    )]
    NoEmailColumn(String),
    #[error("la colonne {0:?} apparaît deux fois dans l'en-tête")]
    DuplicateColumn(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Column {
    Email,
    Name,
    Source,
    Consent,
    Ignored,
}

fn column_of(header: &str) -> Column {
    let h = header.trim().to_lowercase().replace(['-', ' '], "_");
    match h.as_str() {
        "email" | "e_mail" | "mail" | "courriel" | "adresse" => Column::Email,
        "name" | "nom" | "full_name" | "nom_complet" => Column::Name,
        "source" | "origine" => Column::Source,
        "consent_at" | "consent" | "consent_date" | "consentement" | "date_consentement" => {
            Column::Consent
        }
        _ => Column::Ignored,
    }
}

/// One record of the file: its fields and the line it starts on.
struct Record {
    line: u32,
    fields: Vec<String>,
}

/// Splits `text` into records (RFC 4180 with `sep`). A quote inside an unquoted field is kept
/// as a character; an unterminated quoted field runs to the end of the file, and is reported by
/// the caller through its field count.
fn records(text: &str, sep: char) -> Vec<Record> {
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut line: u32 = 1;
    let mut start_line: u32 = 1;
    let mut quoted = false;
    let mut at_field_start = true;
    let mut chars = text.chars().peekable();
    let mut record_has_content = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                other => field.push(other),
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                quoted = true;
                at_field_start = false;
                record_has_content = true;
            }
            c if c == sep => {
                fields.push(std::mem::take(&mut field));
                at_field_start = true;
                record_has_content = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                fields.push(std::mem::take(&mut field));
                if record_has_content || fields.iter().any(|f| !f.trim().is_empty()) {
                    out.push(Record {
                        line: start_line,
                        fields: std::mem::take(&mut fields),
                    });
                } else {
                    fields.clear();
                }
                line += 1;
                start_line = line;
                at_field_start = true;
                record_has_content = false;
            }
            other => {
                field.push(other);
                at_field_start = false;
                record_has_content = true;
            }
        }
    }
    fields.push(field);
    if record_has_content || fields.iter().any(|f| !f.trim().is_empty()) {
        out.push(Record {
            line: start_line,
            fields,
        });
    }
    out
}

/// A consent date: `2025-11-02`, `2025-11-02T10:00:00Z` (RFC 3339), `2025-11-02 10:00:00`
/// or `02/11/2025` (day first, as French spreadsheets write it). Empty: None.
fn consent_date(raw: &str) -> Result<Option<i64>, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(Some(d.timestamp_millis()));
    }
    if let Ok(d) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
        return Ok(Some(d.and_utc().timestamp_millis()));
    }
    for format in ["%Y-%m-%d", "%d/%m/%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, format) {
            return Ok(d
                .and_hms_opt(0, 0, 0)
                .map(|dt| dt.and_utc().timestamp_millis()));
        }
    }
    Err(format!(
        "date de consentement illisible {:?} (attendu 2025-11-02, 02/11/2025 ou RFC 3339)",
        s.chars().take(40).collect::<String>()
    ))
}

/// A name or source as stored: trimmed, control characters (a line break inside quotes, a tab)
/// turned into spaces, bounded.
fn text_field(raw: &str, what: &str) -> Result<String, String> {
    let cleaned: String = raw
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if cleaned.chars().count() > MAX_FIELD_CHARS {
        return Err(format!(
            "{what} trop long (maximum {MAX_FIELD_CHARS} caractères)"
        ));
    }
    Ok(cleaned)
}

/// Reads the file. `now` bounds consent dates (a consent in the future is a mistake).
pub fn parse(bytes: &[u8], default_source: &str, now: i64) -> Result<ParsedFile, FileError> {
    if bytes.len() > MAX_CSV_BYTES {
        return Err(FileError::TooLarge(bytes.len()));
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let header_line = text.lines().next().unwrap_or_default();
    if header_line.trim().is_empty() {
        return Err(FileError::Empty);
    }
    // The separator is whichever of `;` and `,` the header uses more (a header has no quoted
    // commas in practice; ties go to the comma of RFC 4180).
    let sep = if header_line.matches(';').count() > header_line.matches(',').count() {
        ';'
    } else {
        ','
    };
    let mut recs = records(text, sep).into_iter();
    let header = recs.next().ok_or(FileError::Empty)?;
    let columns: Vec<Column> = header.fields.iter().map(|h| column_of(h)).collect();
    for wanted in [Column::Email, Column::Name, Column::Source, Column::Consent] {
        if columns.iter().filter(|c| **c == wanted).count() > 1 {
            let name = header
                .fields
                .iter()
                .find(|h| column_of(h) == wanted)
                .cloned()
                .unwrap_or_default();
            return Err(FileError::DuplicateColumn(name));
        }
    }
    let Some(email_at) = columns.iter().position(|c| *c == Column::Email) else {
        return Err(FileError::NoEmailColumn(
            header_line.chars().take(80).collect(),
        ));
    };
    let at = |c: Column| columns.iter().position(|x| *x == c);
    let (name_at, source_at, consent_at) =
        (at(Column::Name), at(Column::Source), at(Column::Consent));
    let default_source = text_field(default_source, "source").unwrap_or_default();
    let mut out = ParsedFile::default();
    for rec in recs {
        out.read += 1;
        if rec.fields.len() != columns.len() {
            out.problem(
                rec.line,
                format!(
                    "{} champ(s) au lieu de {} (guillemet non fermé ou séparateur en trop ?)",
                    rec.fields.len(),
                    columns.len()
                ),
            );
            continue;
        }
        let field = |i: Option<usize>| i.and_then(|i| rec.fields.get(i)).map_or("", |s| s.as_str());
        let raw_email = field(Some(email_at));
        let email = match Email::parse(raw_email) {
            Ok(e) => e,
            Err(e) => {
                out.problem(rec.line, e.to_string());
                continue;
            }
        };
        let checked = (|| {
            let name = text_field(field(name_at), "nom")?;
            let mut source = text_field(field(source_at), "source")?;
            if source.is_empty() {
                source.clone_from(&default_source);
            }
            let consent = consent_date(field(consent_at))?;
            if consent.is_some_and(|c| c > now) {
                return Err("date de consentement dans le futur".to_owned());
            }
            Ok((name, source, consent))
        })();
        match checked {
            Ok((name, source, consent_at)) => out.rows.push(ContactRow {
                line: rec.line,
                email,
                name,
                source,
                consent_at,
            }),
            Err(reason) => out.problem(rec.line, reason),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn bom_crlf_semicolons_quotes_and_line_numbers() {
        let file = "\u{feff}Nom;Email;Consentement\r\n\
                    \"Amine \"\"Dev\"\" B.\";Amine@Example.DZ;02/11/2025\r\n\
                    \r\n\
                    \"Sara\nline two\";sara@exemple.dz;\r\n\
                    bad;not-an-email;\r\n\
                    x;y@z.dz;31/31/2025\r\n\
                    only-one-field\r\n";
        let parsed = parse(file.as_bytes(), "import", NOW).unwrap();
        assert_eq!(parsed.read, 5);
        assert_eq!(parsed.rows.len(), 2, "{parsed:?}");
        assert_eq!(parsed.rows[0].email.as_str(), "amine@example.dz");
        assert_eq!(parsed.rows[0].name, "Amine \"Dev\" B.");
        assert_eq!(parsed.rows[0].source, "import");
        assert!(parsed.rows[0].consent_at.is_some());
        assert_eq!(parsed.rows[1].line, 4);
        assert_eq!(parsed.rows[1].consent_at, None);
        let lines: Vec<u32> = parsed.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![6, 7, 8], "{:?}", parsed.problems);
    }

    #[test]
    fn refuses_files_without_an_email_column_or_too_large() {
        assert!(matches!(
            parse(b"name,source\na,b\n", "", NOW),
            Err(FileError::NoEmailColumn(_))
        ));
        assert_eq!(parse(b"", "", NOW).unwrap_err(), FileError::Empty);
        let big = vec![b'a'; MAX_CSV_BYTES + 1];
        assert!(matches!(parse(&big, "", NOW), Err(FileError::TooLarge(_))));
        assert!(matches!(
            parse(b"email,mail\n", "", NOW),
            Err(FileError::DuplicateColumn(_))
        ));
    }

    #[test]
    fn an_unclosed_quote_or_a_huge_field_is_one_bad_row() {
        let file = format!(
            "email,name\nok@a.dz,{}\n\"open@a.dz,x\nlast@a.dz,y\n",
            "n".repeat(5000)
        );
        let parsed = parse(file.as_bytes(), "", NOW).unwrap();
        assert!(parsed.rows.is_empty(), "{:?}", parsed.rows);
        assert_eq!(parsed.problems.len(), 2, "{:?}", parsed.problems);
        assert_eq!(parsed.problems[0].line, 2);
        assert_eq!(parsed.problems[1].line, 3);
    }

    #[test]
    fn future_consent_is_refused() {
        let parsed = parse(b"email,consent_at\na@b.dz,2099-01-01\n", "", NOW).unwrap();
        assert_eq!(parsed.problems.len(), 1);
    }
}
