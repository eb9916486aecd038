//! Text tables for people: columns aligned by the widest cell (in characters), two spaces
//! apart, trailing blanks trimmed. `status`, `status --week` and `audit` lay theirs out with it.
//! Every cell is shown escaped ([`escape`]): a name or reason holding a newline or a terminal
//! escape stays one cell of one row.

use super::escape;

/// What separates two columns.
pub const GAP: &str = "  ";

/// A header row: the column names.
pub fn header(names: &[&str]) -> Vec<String> {
    names.iter().map(|&name| name.to_owned()).collect()
}

/// The width of each column of `rows`: its widest cell as shown (escaped), in characters (what
/// `{:<w$}` pads to).
pub(crate) fn widths<S: AsRef<str>>(rows: &[Vec<S>]) -> Vec<usize> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| escape(cell.as_ref()).chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// One row: each cell escaped and padded to its column's width (those in `right`
/// right-aligned), joined by `gap`. A cell past the last width, or wider than its own, is written as it is, pushing
/// the rest of the row right rather than being cut. Nothing is trimmed: a row whose last cell
/// ends in a blank that means something (the week view's skipped hour) keeps it.
pub fn row<S: AsRef<str>>(cells: &[S], widths: &[usize], right: &[usize], gap: &str) -> String {
    let padded: Vec<String> = cells
        .iter()
        .enumerate()
        .map(|(c, cell)| {
            let (cell, w) = (escape(cell.as_ref()), widths.get(c).copied().unwrap_or(0));
            if right.contains(&c) {
                format!("{cell:>w$}")
            } else {
                format!("{cell:<w$}")
            }
        })
        .collect();
    padded.join(gap)
}

/// The lines of `rows`, columns aligned (those in `right` right-aligned), each line starting
/// with `indent` and ending without blanks.
pub fn lines(rows: &[Vec<String>], right: &[usize], indent: &str) -> Vec<String> {
    let widths = widths(rows);
    rows.iter()
        .map(|cells| {
            format!("{indent}{}", row(cells, &widths, right, GAP))
                .trim_end()
                .to_owned()
        })
        .collect()
}

/// A titled section: the first row holds the title and the column names flush left, the
/// others are indented under it, columns aligned across both.
pub fn titled(mut rows: Vec<Vec<String>>, right: &[usize]) -> Vec<String> {
    for row in rows.iter_mut().skip(1) {
        if let Some(first) = row.first_mut() {
            first.insert_str(0, GAP);
        }
    }
    lines(&rows, right, "")
}

/// [`lines`] as text, each line ended by a newline.
pub fn text(rows: &[Vec<String>], right: &[usize], indent: &str) -> String {
    lines(rows, right, indent)
        .into_iter()
        .map(|line| line + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_by_characters_and_lines_end_without_blanks() {
        let rows = vec![
            vec!["WINDOW".into(), "N".into(), "".into()],
            vec!["größe".into(), "12".into(), "".into()],
            vec!["b".into(), "3".into(), "x".into()],
        ];
        assert_eq!(
            lines(&rows, &[1], "  "),
            ["  WINDOW   N", "  größe   12", "  b        3  x"]
        );
        assert_eq!(text(&rows[..1], &[], ""), "WINDOW  N\n");
    }

    #[test]
    fn fixed_widths_push_long_cells_right_and_keep_trailing_blanks() {
        assert_eq!(row(&["ab", "c", "d "], &[3, 1], &[], GAP), "ab   c  d ");
        assert_eq!(row(&["abcd", "c"], &[3], &[], " "), "abcd c");
        assert_eq!(row(&["7", "x"], &[3], &[0], GAP), "  7  x");
    }

    /// A newline or a terminal escape in a cell cannot start a row of its own or hide the
    /// rest: the cell is shown escaped, and the columns align on what is shown.
    #[test]
    fn control_characters_in_cells_are_shown_escaped() {
        let rows = vec![
            vec!["OBJECT".to_owned(), "N".to_owned()],
            vec!["a\nallow bypass".to_owned(), "1".to_owned()],
            vec!["\u{1b}[8mhidden\r".to_owned(), "2".to_owned()],
        ];
        assert_eq!(
            lines(&rows, &[1], ""),
            [
                r"OBJECT             N",
                r"a\nallow bypass    1",
                r"\u{1b}[8mhidden\r  2"
            ]
        );
    }

    #[test]
    fn titled_sections_indent_all_but_the_first_row() {
        let rows = vec![
            vec!["BY WINDOW".into(), "ALLOW".into()],
            vec!["nightly".into(), "3".into()],
        ];
        assert_eq!(titled(rows, &[1]), ["BY WINDOW  ALLOW", "  nightly      3"]);
    }
}
