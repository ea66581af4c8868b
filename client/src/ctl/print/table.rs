//! The `table` format: the bordered tables etcdctl draws for the
//! cluster-level commands (header centred and upper-cased, cells
//! right-aligned, cells wider than 30 columns wrapped at spaces).

use std::io::{self, Write};

use unicode_width::UnicodeWidthStr;

use super::{member_rows, status_rows, EndpointHealth, EndpointStatus};
use crate::limits::TABLE_CELL_WIDTH_MAX;
use crate::MemberListResponse;

pub fn member_list(out: &mut dyn Write, r: &MemberListResponse) -> io::Result<()> {
    let header = [
        "ID",
        "Status",
        "Name",
        "Peer Addrs",
        "Client Addrs",
        "Is Learner",
    ];
    render(out, &header, &member_rows(r))
}

pub fn endpoint_health(out: &mut dyn Write, list: &[EndpointHealth]) -> io::Result<()> {
    let header = ["endpoint", "health", "took", "error"];
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|h| {
            vec![
                h.endpoint.clone(),
                h.health.to_string(),
                h.took.clone(),
                h.error.clone(),
            ]
        })
        .collect();
    render(out, &header, &rows)
}

pub fn endpoint_status(out: &mut dyn Write, list: &[EndpointStatus]) -> io::Result<()> {
    let header = [
        "endpoint",
        "ID",
        "version",
        "db size",
        "is leader",
        "is learner",
        "raft term",
        "raft index",
        "raft applied index",
        "errors",
    ];
    render(out, &header, &status_rows(list))
}

pub fn endpoint_hashkv(out: &mut dyn Write, list: &[super::EndpointHashKv]) -> io::Result<()> {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|h| vec![h.endpoint.clone(), h.hash.hash.to_string()])
        .collect();
    render(out, &["endpoint", "hash"], &rows)
}

/// A cell's lines and the width its column needs for it.
fn layout(cell: &str) -> (Vec<String>, usize) {
    let paragraphs: Vec<&str> = cell.split('\n').collect();
    let widest = paragraphs.iter().map(|p| p.width()).max().unwrap_or(0);
    let limit = widest.min(TABLE_CELL_WIDTH_MAX);
    let mut lines = Vec::new();
    let mut width = limit;
    for (i, paragraph) in paragraphs.iter().enumerate() {
        if i > 0 {
            lines.push(" ".to_string());
        }
        for line in wrap(paragraph, limit) {
            width = width.max(line.width());
            lines.push(line);
        }
    }
    (lines, width)
}

/// Splits a paragraph at single spaces into lines of at most `limit`
/// columns, choosing the breaks that minimise the sum of squared slack over
/// all lines but the last (minimum raggedness, as etcdctl's table writer
/// does). A word longer than the limit raises the limit to its width.
fn wrap(paragraph: &str, limit: usize) -> Vec<String> {
    let words: Vec<&str> = paragraph.split(' ').collect();
    let limit = words.iter().map(|w| w.width()).fold(limit, usize::max) as i64;
    let count = words.len();
    // width of words[i..=j] joined by single spaces.
    let span = |i: usize, j: usize| -> i64 {
        let letters: usize = words[i..=j].iter().map(|w| w.width()).sum();
        (letters + (j - i)) as i64
    };
    const TOO_LONG_PENALTY: i64 = 100_000;
    let mut cost = vec![i64::MAX; count + 1];
    let mut next_break = vec![count; count + 1];
    cost[count] = 0;
    for i in (0..count).rev() {
        if span(i, count - 1) <= limit {
            cost[i] = 0;
            next_break[i] = count;
            continue;
        }
        for j in i + 1..count {
            let slack = limit - span(i, j - 1);
            let mut c = slack * slack + cost[j];
            if slack < 0 {
                c += TOO_LONG_PENALTY;
            }
            if c < cost[i] {
                cost[i] = c;
                next_break[i] = j;
            }
        }
    }
    let mut lines = Vec::new();
    let mut i = 0;
    while i < count {
        let j = next_break[i];
        lines.push(words[i..j].join(" "));
        i = j;
    }
    lines
}

pub(crate) fn render(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let header_cells: Vec<(Vec<String>, usize)> =
        header.iter().map(|h| layout(&h.to_uppercase())).collect();
    let body: Vec<Vec<(Vec<String>, usize)>> = rows
        .iter()
        .map(|row| row.iter().map(|c| layout(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header_cells.iter().map(|(_, w)| *w).collect();
    for row in &body {
        for (column, (_, w)) in row.iter().enumerate() {
            widths[column] = widths[column].max(*w);
        }
    }
    let border = {
        let mut line = String::from("+");
        for w in &widths {
            line.push_str(&"-".repeat(w + 2));
            line.push('+');
        }
        line
    };
    writeln!(out, "{border}")?;
    print_row(out, &header_cells, &widths, true)?;
    writeln!(out, "{border}")?;
    for row in &body {
        print_row(out, row, &widths, false)?;
    }
    writeln!(out, "{border}")
}

fn print_row(
    out: &mut dyn Write,
    cells: &[(Vec<String>, usize)],
    widths: &[usize],
    centred: bool,
) -> io::Result<()> {
    let height = cells
        .iter()
        .map(|(lines, _)| lines.len())
        .max()
        .unwrap_or(0);
    for line_index in 0..height {
        let mut line = String::from("|");
        for (column, (lines, _)) in cells.iter().enumerate() {
            let text = lines.get(line_index).map(String::as_str).unwrap_or("");
            let gap = widths[column].saturating_sub(text.width());
            let (left, right) = if centred {
                (gap / 2, gap - gap / 2)
            } else {
                (gap, 0)
            };
            line.push(' ');
            line.push_str(&" ".repeat(left));
            line.push_str(text);
            line.push_str(&" ".repeat(right));
            line.push_str(" |");
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}
