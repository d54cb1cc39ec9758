//! Aligned text tables for people: a header row (optional) and rows of cells, each column as
//! wide as its widest cell, two spaces between columns, no trailing spaces.
//!
//! ```text
//! NODE    ADDRESS    CPU%  RAM FREE
//! node-a  10.0.0.5   12.5  2.0G
//! node-b  ::1        0     512M
//! ```
//! Pure: [`Table::render`] returns the text and never writes anywhere. Widths count characters,
//! not bytes. A row with fewer cells than the widest row is padded with empty cells; a line break
//! inside a cell is shown as a space so that a row stays one line.

/// Columns are separated by this.
const GAP: &str = "  ";

/// A table being built: [`Table::row`] adds rows, [`Table::render`] lays them out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    header: Option<Vec<String>>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first line is `header` (upper-case column names by convention).
    #[must_use]
    pub fn new<I, S>(header: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            header: Some(header.into_iter().map(Into::into).collect()),
            rows: Vec::new(),
        }
    }

    /// A table without a header line: aligned rows only (for per-item result lines).
    #[must_use]
    pub fn headless() -> Self {
        Self::default()
    }

    /// Adds one row.
    pub fn row<I, S>(&mut self, cells: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// The number of rows, not counting the header.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The laid-out table, one line per row (header first), each line ending in `\n`. An empty
    /// headless table renders as the empty string.
    #[must_use]
    pub fn render(&self) -> String {
        let lines: Vec<Vec<String>> = self
            .header
            .iter()
            .chain(&self.rows)
            .map(|row| {
                row.iter()
                    .map(|cell| cell.replace(['\n', '\r'], " "))
                    .collect()
            })
            .collect();
        let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for line in &lines {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in &lines {
            let mut text = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = line.get(i).map_or("", String::as_str);
                if i > 0 {
                    text.push_str(GAP);
                }
                text.push_str(cell);
                let pad = width.saturating_sub(cell.chars().count());
                text.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut t = Table::new(["NODE", "ADDRESS", "CPU%"]);
        t.row(["node-a", "10.0.0.5", "12.5"]);
        t.row(["b", "::1", "0"]);
        assert_eq!(
            t.render(),
            "NODE    ADDRESS   CPU%\n\
             node-a  10.0.0.5  12.5\n\
             b       ::1       0\n"
        );
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn a_header_wider_than_the_cells_sets_the_width_and_nothing_trails() {
        let mut t = Table::new(["REPLICA", "X"]);
        t.row(["r1", ""]);
        assert_eq!(t.render(), "REPLICA  X\nr1\n");
    }

    #[test]
    fn widths_count_characters_and_short_rows_are_padded() {
        let mut t = Table::headless();
        t.row(["é", "a", "z"]);
        t.row(["ab", "b"]);
        assert_eq!(t.render(), "é   a  z\nab  b\n");
    }

    #[test]
    fn empty_tables_and_line_breaks_in_cells() {
        assert_eq!(Table::headless().render(), "");
        assert!(Table::headless().is_empty());
        assert_eq!(Table::new(["A", "B"]).render(), "A  B\n");
        let mut t = Table::headless();
        t.row(["a\nb", "c"]);
        assert_eq!(t.render(), "a b  c\n");
    }
}
