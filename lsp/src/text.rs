//! Byte offsets (what the compiler's spans count) to LSP positions and back. LSP counts
//! columns in UTF-16 code units unless the client negotiates UTF-8.
//!
//! Both directions take O(log n) per call, however long the line: the index keeps where each
//! line starts and where each character wider in UTF-8 than in UTF-16 is, so a column is a
//! byte difference less the bytes those characters have over their UTF-16 units. (A line of
//! 330 KB with a token per word would otherwise cost a scan of its prefix per token.)

use lsp_types::{Position, Range};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    Utf8,
    /// The protocol's default.
    #[default]
    Utf16,
}

/// Where each line of a text starts, and where its characters of more than one byte are.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
    encoding: Encoding,
    /// The characters of more than one UTF-8 byte, in text order (UTF-16 only).
    wide: Vec<Wide>,
    /// `extra[i]`: the bytes over their UTF-16 units of `wide[..i]` (one more entry than `wide`).
    extra: Vec<usize>,
}

/// A character of 2 to 4 UTF-8 bytes (1 or 2 UTF-16 units).
#[derive(Debug, Clone, Copy)]
struct Wide {
    at: usize,
    bytes: u8,
    units: u8,
}

impl LineIndex {
    pub fn new(text: &str, encoding: Encoding) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let mut wide = Vec::new();
        let mut extra = vec![0];
        if encoding == Encoding::Utf16 && !text.is_ascii() {
            for (at, c) in text.char_indices().filter(|(_, c)| !c.is_ascii()) {
                let (bytes, units) = (c.len_utf8(), c.len_utf16());
                wide.push(Wide { at, bytes: bytes as u8, units: units as u8 });
                extra.push(extra[extra.len() - 1] + bytes - units);
            }
        }
        LineIndex { starts, encoding, wide, extra }
    }

    /// The bytes over their UTF-16 units of the characters before a character boundary.
    fn extra_before(&self, offset: usize) -> usize {
        self.extra[self.wide.partition_point(|w| w.at < offset)]
    }

    /// The column of a character boundary on the line that starts at `start`.
    fn column(&self, start: usize, offset: usize) -> usize {
        match self.encoding {
            Encoding::Utf8 => offset - start,
            Encoding::Utf16 => (offset - start) - (self.extra_before(offset) - self.extra_before(start)),
        }
    }

    /// The position of a byte offset (clamped to the text, and to a character boundary).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let offset = floor_boundary(text, offset.min(text.len()));
        let line = self.starts.partition_point(|&s| s <= offset).saturating_sub(1);
        let start = self.starts.get(line).copied().unwrap_or(0);
        Position { line: line as u32, character: self.column(start, offset) as u32 }
    }

    pub fn range(&self, text: &str, start: usize, end: usize) -> Range {
        Range { start: self.position(text, start), end: self.position(text, end.max(start)) }
    }

    /// The byte offset of a position: the first character boundary of its line at or past its
    /// column (past the end of the line: the line's end).
    pub fn offset(&self, text: &str, pos: Position) -> usize {
        let Some(&start) = self.starts.get(pos.line as usize) else { return text.len() };
        let end = self.starts.get(pos.line as usize + 1).map_or(text.len(), |&e| e.saturating_sub(1));
        let column = pos.character as usize;
        let found = match self.encoding {
            Encoding::Utf8 => ceil_boundary(text, start.saturating_add(column)),
            Encoding::Utf16 => {
                // The wide characters of the line; between them every byte is one unit.
                let first = self.wide.partition_point(|w| w.at < start);
                let line = &self.wide[first..self.wide.partition_point(|w| w.at < end)];
                // The last wide character that starts before the column...
                let before = line.partition_point(|w| self.column(start, w.at) < column);
                match before.checked_sub(1).map(|i| line[i]) {
                    None => start + column,
                    Some(w) => {
                        // ...and the boundary just after it, then ASCII up to the column.
                        let after = w.at + w.bytes as usize;
                        let units = self.column(start, w.at) + w.units as usize;
                        after + column.saturating_sub(units)
                    }
                }
            }
        };
        found.min(end)
    }
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i.min(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_counts_surrogate_pairs_and_bmp_characters() {
        // `é` is 2 bytes and 1 UTF-16 unit; `😀` is 4 bytes and 2 units.
        let text = "a\né😀x\n";
        let idx = LineIndex::new(text, Encoding::Utf16);
        let x = text.find('x').unwrap_or(0);
        assert_eq!(idx.position(text, x), Position { line: 1, character: 3 });
        assert_eq!(idx.offset(text, Position { line: 1, character: 3 }), x);
        let idx8 = LineIndex::new(text, Encoding::Utf8);
        assert_eq!(idx8.position(text, x), Position { line: 1, character: 6 });
        assert_eq!(idx8.offset(text, Position { line: 1, character: 6 }), x);
    }

    #[test]
    fn out_of_range_is_clamped() {
        let text = "ab\ncd";
        let idx = LineIndex::new(text, Encoding::Utf16);
        assert_eq!(idx.offset(text, Position { line: 0, character: 99 }), 2);
        assert_eq!(idx.offset(text, Position { line: 9, character: 0 }), 5);
        assert_eq!(idx.position(text, 99), Position { line: 1, character: 2 });
    }

    /// The index answers as a scan of each line from its start does, on every boundary and
    /// column of texts mixing 1- to 4-byte characters, in both encodings.
    #[test]
    fn the_index_agrees_with_a_scan_from_the_line_start() {
        fn scan_position(text: &str, offset: usize, enc: Encoding) -> Position {
            let line = text[..offset].matches('\n').count();
            let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
            let prefix = &text[start..offset];
            let character = match enc {
                Encoding::Utf8 => prefix.len(),
                Encoding::Utf16 => prefix.encode_utf16().count(),
            };
            Position { line: line as u32, character: character as u32 }
        }
        fn scan_offset(text: &str, pos: Position, enc: Encoding) -> usize {
            let mut start = 0;
            for _ in 0..pos.line {
                match text[start..].find('\n') {
                    Some(i) => start += i + 1,
                    None => return text.len(),
                }
            }
            let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            let mut units = 0;
            for (i, c) in text[start..end].char_indices() {
                if units >= pos.character as usize {
                    return start + i;
                }
                units += if enc == Encoding::Utf8 { c.len_utf8() } else { c.len_utf16() };
            }
            end
        }
        let texts = ["", "abc", "é😀x\n\n😀", "a\u{3000}b\nxé\r\n😀😀é a\n", "😀", "\n\né", "ab😀cd\néé\nz"];
        for text in texts {
            for enc in [Encoding::Utf8, Encoding::Utf16] {
                let idx = LineIndex::new(text, enc);
                for offset in (0..=text.len()).filter(|&o| text.is_char_boundary(o)) {
                    assert_eq!(idx.position(text, offset), scan_position(text, offset, enc), "{text:?} {offset}");
                }
                for line in 0..5 {
                    for character in 0..12 {
                        let pos = Position { line, character };
                        assert_eq!(idx.offset(text, pos), scan_offset(text, pos, enc), "{text:?} {pos:?} {enc:?}");
                    }
                }
            }
        }
    }
}
