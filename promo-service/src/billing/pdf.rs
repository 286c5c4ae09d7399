//! An invoice as a one-page A4 PDF, written with `pdf-writer` (typst's PDF writer). The text is
//! set in DejaVu Sans (Bitstream Vera licence, `fonts/DejaVuSans-LICENSE.txt`), embedded from
//! the binary — no font is looked up on the system at run time — as a CID font with Identity-H
//! encoding and a ToUnicode map, so accents (é, è, à, ç) print and `pdftotext` or a screen
//! reader get the text back. Amounts are integer dinars, written `15 000 DA`.

use std::collections::BTreeMap;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str};

use crate::clock::french_date;
use crate::domain::account::thousands;
use crate::domain::billing as rules;
use crate::error::{PromoError, Result};
use crate::repo::billing::InvoiceRow;

static FONT: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const LEFT: f32 = 56.0;
const RIGHT: f32 = PAGE_W - 56.0;

/// "15 000 DA" (plain spaces: every PDF reader copies them as spaces).
fn da(v: i64) -> String {
    let sign = if v < 0 { "−" } else { "" };
    format!(
        "{sign}{} DA",
        thousands(v.unsigned_abs()).replace('\u{202f}', " ")
    )
}

/// 1900 → "19", 1950 → "19,5".
fn rate(bp: u32) -> String {
    let whole = bp / 100;
    let frac = bp % 100;
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole},{}", format!("{frac:02}").trim_end_matches('0'))
    }
}

/// Glyphs of the embedded font, and the ones a document used (for widths and ToUnicode).
struct Face<'a> {
    face: ttf_parser::Face<'a>,
    used: BTreeMap<u16, char>,
}

impl<'a> Face<'a> {
    fn glyph(&mut self, c: char) -> u16 {
        let g = self.face.glyph_index(c).map_or(0, |g| g.0);
        self.used.entry(g).or_insert(c);
        g
    }

    /// Width of a glyph in text space units (1/1000 of the font size).
    fn advance(&self, g: u16) -> f32 {
        let upem = f32::from(self.face.units_per_em());
        f32::from(
            self.face
                .glyph_hor_advance(ttf_parser::GlyphId(g))
                .unwrap_or(0),
        ) * 1000.0
            / upem
    }

    /// The string as big-endian glyph ids, and its width at `size`.
    fn encode(&mut self, text: &str) -> (Vec<u8>, f32) {
        let mut out = Vec::with_capacity(text.len() * 2);
        let mut width = 0.0;
        for c in text.chars() {
            let g = self.glyph(c);
            width += self.advance(g);
            out.extend_from_slice(&g.to_be_bytes());
        }
        (out, width / 1000.0)
    }
}

struct Page<'f, 'a> {
    face: &'f mut Face<'a>,
    content: Content,
}

impl Page<'_, '_> {
    fn text(&mut self, x: f32, y: f32, size: f32, s: &str) {
        let (bytes, _) = self.face.encode(s);
        self.content.begin_text();
        self.content.set_font(Name(b"F1"), size);
        self.content.next_line(x, y);
        self.content.show(Str(&bytes));
        self.content.end_text();
    }

    /// Right-aligned on `x`.
    fn right(&mut self, x: f32, y: f32, size: f32, s: &str) {
        let (_, w) = self.face.encode(s);
        self.text(x - w * size, y, size, s);
    }

    fn rule(&mut self, y: f32) {
        self.content.set_line_width(0.5);
        self.content.move_to(LEFT, y);
        self.content.line_to(RIGHT, y);
        self.content.stroke();
    }
}

/// The invoice's PDF. What payments settled on it is its total less credit notes less its
/// balance.
pub fn render(invoice: &InvoiceRow) -> Result<Vec<u8>> {
    let face = ttf_parser::Face::parse(FONT, 0).map_err(PromoError::internal)?;
    let mut face = Face {
        face,
        used: BTreeMap::new(),
    };
    let mut page = Page {
        face: &mut face,
        content: Content::new(),
    };
    let mut y = PAGE_H - 64.0;
    page.text(LEFT, y, 20.0, &format!("FACTURE n° {}", invoice.number));
    y -= 28.0;
    let s = &invoice.seller;
    let or_dash = |v: &str| {
        if v.is_empty() {
            "—".to_owned()
        } else {
            v.to_owned()
        }
    };
    page.text(LEFT, y, 11.0, &or_dash(&s.name));
    y -= 14.0;
    page.text(LEFT, y, 9.0, &or_dash(&s.address));
    y -= 12.0;
    page.text(
        LEFT,
        y,
        9.0,
        &format!("NIF : {}   NIS : {}", or_dash(&s.nif), or_dash(&s.nis)),
    );
    y -= 12.0;
    page.text(
        LEFT,
        y,
        9.0,
        &format!(
            "RC : {}   Article : {}",
            or_dash(&s.rc),
            or_dash(&s.article)
        ),
    );
    y -= 26.0;
    page.text(
        LEFT,
        y,
        10.0,
        &format!("Client : {} ({})", invoice.email, invoice.customer_id),
    );
    y -= 14.0;
    page.text(
        LEFT,
        y,
        10.0,
        &format!(
            "Date d'émission : {}    Échéance : {}",
            french_date(invoice.issued_at),
            french_date(invoice.due_at)
        ),
    );
    y -= 14.0;
    page.text(
        LEFT,
        y,
        10.0,
        &format!(
            "Période : {}",
            rules::period_text(invoice.period_start, invoice.period_end)
        ),
    );
    y -= 28.0;
    page.text(LEFT, y, 10.0, "Désignation");
    page.right(RIGHT, y, 10.0, "Montant");
    y -= 6.0;
    page.rule(y);
    y -= 16.0;
    for line in &invoice.lines {
        page.text(LEFT, y, 10.0, &line.label);
        page.right(RIGHT, y, 10.0, &da(line.amount_dzd));
        y -= 16.0;
    }
    page.rule(y + 8.0);
    y -= 10.0;
    let signed = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let tax_label = format!(
        "TVA {} %{}",
        rate(invoice.tax_rate_bp),
        if invoice.prices_include_tax {
            " (incluse)"
        } else {
            ""
        }
    );
    let paid = invoice
        .total_dzd
        .saturating_sub(invoice.credited_dzd)
        .saturating_sub(invoice.balance_dzd);
    let mut totals = vec![
        ("Total HT".to_owned(), signed(invoice.net_dzd)),
        (tax_label, signed(invoice.tax_dzd)),
        ("Total TTC".to_owned(), signed(invoice.total_dzd)),
    ];
    if invoice.credited_dzd > 0 {
        totals.push(("Avoirs".to_owned(), -signed(invoice.credited_dzd)));
    }
    totals.push(("Déjà réglé".to_owned(), -signed(paid)));
    totals.push(("Reste à payer".to_owned(), signed(invoice.balance_dzd)));
    for (label, amount) in &totals {
        page.text(RIGHT - 240.0, y, 10.0, label);
        page.right(RIGHT, y, 10.0, &da(*amount));
        y -= 16.0;
    }
    y -= 20.0;
    for sentence in [
        "Montants en dinars algériens (DA / DZD), arrondis au dinar.",
        "Paiement par carte Edahabia / CIB depuis votre espace client,",
        &format!(
            "ou par virement, CCP ou BaridiMob en indiquant le numéro {}.",
            invoice.number
        ),
    ] {
        page.text(LEFT, y, 8.0, sentence);
        y -= 12.0;
    }
    let content = page.content.finish();
    Ok(assemble(&face, &content))
}

fn assemble(face: &Face<'_>, content: &[u8]) -> Vec<u8> {
    let (catalog, tree, page_id, font, cid, descriptor, file, cmap, contents) = (
        Ref::new(1),
        Ref::new(2),
        Ref::new(3),
        Ref::new(4),
        Ref::new(5),
        Ref::new(6),
        Ref::new(7),
        Ref::new(8),
        Ref::new(9),
    );
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page_id]).count(1);
    let mut page = pdf.page(page_id);
    page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
    page.parent(tree);
    page.contents(contents);
    page.resources().fonts().pair(Name(b"F1"), font);
    page.finish();

    let base = Name(b"DejaVuSans");
    let info = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };
    pdf.type0_font(font)
        .base_font(base)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid)
        .to_unicode(cmap);
    let mut c = pdf.cid_font(cid);
    c.subtype(CidFontType::Type2)
        .base_font(base)
        .system_info(info)
        .font_descriptor(descriptor)
        .default_width(0.0)
        .cid_to_gid_map_predefined(Name(b"Identity"));
    let mut widths = c.widths();
    for &g in face.used.keys() {
        widths.consecutive(g, [face.advance(g)]);
    }
    widths.finish();
    c.finish();

    let f = &face.face;
    let scale = 1000.0 / f32::from(f.units_per_em());
    let bb = f.global_bounding_box();
    pdf.font_descriptor(descriptor)
        .name(base)
        .flags(FontFlags::NON_SYMBOLIC)
        .bbox(Rect::new(
            f32::from(bb.x_min) * scale,
            f32::from(bb.y_min) * scale,
            f32::from(bb.x_max) * scale,
            f32::from(bb.y_max) * scale,
        ))
        .italic_angle(0.0)
        .ascent(f32::from(f.ascender()) * scale)
        .descent(f32::from(f.descender()) * scale)
        .cap_height(f32::from(f.capital_height().unwrap_or(f.ascender())) * scale)
        .stem_v(80.0)
        .font_file2(file);

    let compressed = miniz_oxide::deflate::compress_to_vec_zlib(FONT, 6);
    pdf.stream(file, &compressed)
        .filter(Filter::FlateDecode)
        .pair(
            Name(b"Length1"),
            i32::try_from(FONT.len()).unwrap_or(i32::MAX),
        );

    let mut map = pdf_writer::types::UnicodeCmap::new(Name(b"Custom"), info);
    for (&g, &ch) in &face.used {
        map.pair(g, ch);
    }
    pdf.cmap(cmap, &map.finish());
    pdf.stream(contents, content);
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_rates_are_written_the_french_way() {
        assert_eq!(da(15_000), "15 000 DA");
        assert_eq!(da(-4_950), "−4 950 DA");
        assert_eq!(da(0), "0 DA");
        assert_eq!(rate(1900), "19");
        assert_eq!(rate(1950), "19,5");
        assert_eq!(rate(905), "9,05");
        assert_eq!(rate(0), "0");
    }
}
