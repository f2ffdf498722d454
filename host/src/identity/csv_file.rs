//! Reading a spreadsheet export as the people who made it saved it: with
//! `,`, `;` (the usual export where the decimal separator is a comma —
//! Brazil, most of Europe) or tabs between the columns; in UTF-8, with or
//! without a byte-order mark, or in Windows-1252 (Excel's "CSV" on Windows,
//! a superset of Latin-1). What was used is reported with the import.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::import::{ImportError, ImportRow, split_tags};

/// How a CSV file was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CsvFormat {
    /// `,`, `;` or `\t`.
    pub delimiter: String,
    /// `utf-8` or `windows-1252`.
    pub encoding: String,
}

/// The rows of a CSV file and how it was read.
pub fn read(body: &[u8]) -> Result<(Vec<ImportRow>, CsvFormat), ImportError> {
    let (text, encoding) = decode(body);
    let delimiter = sniff_delimiter(&text);
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .trim(::csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| ImportError::Csv(e.to_string()))?.clone();
    let lower: Vec<&str> = headers.iter().map(column).collect();
    if !lower.contains(&"phone") {
        return Err(ImportError::NoPhoneColumn { delimiter: char::from(delimiter) });
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| ImportError::Csv(e.to_string()))?;
        let field = |name: &str| {
            let at = lower.iter().position(|h| *h == name)?;
            record.get(at).map(str::to_string).filter(|v| !v.is_empty())
        };
        rows.push(ImportRow {
            phone: field("phone").unwrap_or_default(),
            name: field("name"),
            email: field("email"),
            company: field("company"),
            tags: field("tags").map(|t| split_tags(&t)).unwrap_or_default(),
            country: field("country"),
        });
    }
    let delimiter = if delimiter == b'\t' { "\\t".to_string() } else { char::from(delimiter).to_string() };
    Ok((rows, CsvFormat { delimiter, encoding: encoding.to_string() }))
}

/// The column a header names: ours in English, or as the spreadsheets of
/// our users' markets head them (Portuguese, Spanish), ignoring case and
/// accents; any other header is not read.
fn column(header: &str) -> &'static str {
    let folded: String = header
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' => 'a',
            'é' | 'ê' => 'e',
            'í' => 'i',
            'ó' | 'ô' | 'õ' => 'o',
            'ú' => 'u',
            'ç' => 'c',
            '_' | '-' => ' ',
            c => c,
        })
        .collect();
    match folded.as_str() {
        "phone" | "phone number" | "mobile" | "whatsapp" | "telefone" | "celular" | "telefono" | "movil" | "numero" => {
            "phone"
        }
        "name" | "full name" | "nome" | "nombre" => "name",
        "email" | "e mail" | "correo" | "correo electronico" => "email",
        "company" | "empresa" | "organization" => "company",
        "tags" | "labels" | "etiquetas" => "tags",
        "country" | "region" | "pais" => "country",
        _ => "",
    }
}

/// UTF-8 (a byte-order mark dropped) when the bytes are UTF-8, else
/// Windows-1252: a file that is not UTF-8 is almost always that (Excel on
/// Windows), and every byte sequence decodes in it, so nothing is refused.
fn decode(body: &[u8]) -> (std::borrow::Cow<'_, str>, &'static str) {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match std::str::from_utf8(body) {
        Ok(text) => (text.into(), "utf-8"),
        Err(_) => (encoding_rs::WINDOWS_1252.decode_without_bom_handling(body).0, "windows-1252"),
    }
}

/// The delimiter the header line uses most, outside quotes: `,` unless
/// `;` or a tab is more frequent.
fn sniff_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or_default();
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for c in header.bytes() {
        if c == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(entry) = counts.iter_mut().find(|(d, _)| *d == c) {
            entry.1 += 1;
        }
    }
    counts.iter().filter(|(_, n)| *n > 0).max_by_key(|(d, n)| (*n, *d == b',')).map_or(b',', |(d, _)| *d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semicolons_tabs_and_quoted_commas() {
        let (rows, format) = read(b"name;phone;tags\n\"Souza, Ana\";(11) 98765-4321;vip|sp\n").unwrap();
        assert_eq!(format, CsvFormat { delimiter: ";".into(), encoding: "utf-8".into() });
        assert_eq!((rows[0].name.as_deref(), rows[0].phone.as_str()), (Some("Souza, Ana"), "(11) 98765-4321"));
        assert_eq!(rows[0].tags, ["vip", "sp"]);
        let (rows, format) = read(b"phone\tname\n+39 312 345 6789\tGiulia\n").unwrap();
        assert_eq!((format.delimiter.as_str(), rows[0].name.as_deref()), ("\\t", Some("Giulia")));
        let (_, format) = read(b"\"name;x\",phone\nA,1\n").unwrap();
        assert_eq!(format.delimiter, ",", "a delimiter inside quotes does not count");
    }

    #[test]
    fn a_byte_order_mark_and_windows_1252_are_read() {
        let (rows, format) = read(b"\xEF\xBB\xBFphone,name\n+5511987654321,Jo\xC3\xA3o\n").unwrap();
        assert_eq!((format.encoding.as_str(), rows[0].name.as_deref()), ("utf-8", Some("João")));
        // "João Müller" saved by Excel on Windows: ã is 0xE3, ü is 0xFC.
        let (rows, format) = read(b"phone;name\n+5511987654321;Jo\xE3o M\xFCller\n").unwrap();
        assert_eq!(format, CsvFormat { delimiter: ";".into(), encoding: "windows-1252".into() });
        assert_eq!(rows[0].name.as_deref(), Some("João Müller"));
    }
}
