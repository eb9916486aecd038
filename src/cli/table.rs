//! Text tables for people: columns aligned by the widest cell (in characters), two spaces
//! apart, trailing blanks trimmed. `status` and `audit` print theirs with it.

/// The lines of `rows`, columns aligned (those in `right` right-aligned), each line starting
/// with `indent`.
pub fn lines(rows: &[Vec<String>], right: &[usize], indent: &str) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (cell, &w))| {
                    if right.contains(&c) {
                        format!("{cell:>w$}")
                    } else {
                        format!("{cell:<w$}")
                    }
                })
                .collect();
            format!("{indent}{}", cells.join("  "))
                .trim_end()
                .to_owned()
        })
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
    }
}
