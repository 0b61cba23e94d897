//! LOLWUT [VERSION v] [args...]: computer art and the version. VERSION 5
//! draws Georg Nees's "Schotter" (1968) in Braille characters, as Redis 5's
//! LOLWUT does (the art is random, so it is never the same twice); any other
//! version answers the version line, as Redis does for versions it has no
//! art for.

use bytes::Bytes;

use super::{cmd, flag::*, CommandSpec, Ctx, Exec};
use crate::error::CmdResult;
use crate::resp::Out;
use crate::util::{eq_ic, parse_i64};

pub static COMMANDS: &[CommandSpec] = &[cmd(
    "lolwut",
    -1,
    READONLY | FAST,
    (0, 0, 0),
    &["read", "fast"],
    "server",
    "Displays computer art and the Redis version",
    Exec::Shard(lolwut),
)];

fn lolwut(_: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (version, rest) =
        if args.len() >= 3 && eq_ic(&args[1], "VERSION") { (Some(parse_i64(&args[2])?), &args[3..]) } else { (None, &args[1..]) };
    if version != Some(5) {
        out.verbatim(&format!("Redis ver. {}\n", crate::REDIS_VERSION));
        return Ok(());
    }
    // Columns, squares per row and per column, clamped as Redis does.
    let mut p = [66i64, 8, 12];
    for (slot, a) in p.iter_mut().zip(rest) {
        *slot = parse_i64(a)?;
    }
    let (cols, per_row, per_col) = (p[0].clamp(1, 1000) as usize, p[1].clamp(1, 200) as usize, p[2].clamp(1, 200) as usize);
    let mut art = schotter(cols, per_row, per_col).render();
    art.push_str("\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. ");
    art.push_str(crate::REDIS_VERSION);
    art.push('\n');
    out.verbatim(&art);
    Ok(())
}

/// A black-and-white pixel canvas.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<bool>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Canvas {
        Canvas { width, height, pixels: vec![false; width * height] }
    }

    fn set(&mut self, x: i64, y: i64) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            self.pixels[x as usize + y as usize * self.width] = true;
        }
    }

    fn get(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.height && self.pixels[x + y * self.width]
    }

    /// Bresenham's line.
    fn line(&mut self, (mut x1, mut y1): (i64, i64), (x2, y2): (i64, i64)) {
        let (dx, dy) = ((x2 - x1).abs(), (y2 - y1).abs());
        let (sx, sy) = (if x1 < x2 { 1 } else { -1 }, if y1 < y2 { 1 } else { -1 });
        let mut err = dx - dy;
        loop {
            self.set(x1, y1);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// A square of side `size` centred on (x, y), turned by `angle`.
    fn square(&mut self, x: i64, y: i64, size: f32, angle: f32) {
        let half = (size / std::f32::consts::SQRT_2).round();
        let mut k = std::f32::consts::FRAC_PI_4 + angle;
        let mut corners = [(0i64, 0i64); 4];
        for c in &mut corners {
            *c = ((k.sin() * half + x as f32).round() as i64, (k.cos() * half + y as f32).round() as i64);
            k += std::f32::consts::FRAC_PI_2;
        }
        for j in 0..4 {
            self.line(corners[j], corners[(j + 1) % 4]);
        }
    }

    /// Two columns by four rows of pixels per Braille character.
    fn render(&self) -> String {
        let mut text = String::new();
        for y in (0..self.height).step_by(4) {
            for x in (0..self.width).step_by(2) {
                let dots = [(0, 0, 0), (0, 1, 1), (0, 2, 2), (1, 0, 3), (1, 1, 4), (1, 2, 5), (0, 3, 6), (1, 3, 7)];
                let bits = dots.iter().filter(|(dx, dy, _)| self.get(x + dx, y + dy)).fold(0u32, |b, (_, _, bit)| b | 1 << bit);
                text.push(char::from_u32(0x2800 + bits).unwrap_or(' '));
            }
            if y + 1 != self.height {
                text.push('\n');
            }
        }
        text
    }
}

/// Rows of squares, more disordered the lower they are.
fn schotter(cols: usize, per_row: usize, per_col: usize) -> Canvas {
    let width = cols * 2;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_col as f32) as usize + padding * 2;
    let mut canvas = Canvas::new(width, height);
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0 + padding as f32) as i64;
            let mut sy = (y as f32 * side + side / 2.0 + padding as f32) as i64;
            let mut angle = 0.0;
            if y > 1 {
                let jitter = || {
                    let r = rand::random::<f32>() / per_col as f32 * y as f32;
                    if rand::random::<bool>() {
                        -r
                    } else {
                        r
                    }
                };
                angle = jitter();
                sx += (jitter() * side / 3.0) as i64;
                sy += (jitter() * side / 3.0) as i64;
            }
            canvas.square(sx, sy, side, angle);
        }
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_square_in_one_character() {
        // One column: a 2x2 canvas, one square of side 2 around (1, 1),
        // as redis-server draws it.
        assert_eq!(schotter(1, 1, 1).render(), "\u{280b}\n");
    }

    #[test]
    fn rows_and_columns_of_the_default_size() {
        let art = schotter(66, 8, 12).render();
        let lines: Vec<&str> = art.lines().collect();
        assert!(lines.iter().all(|l| l.chars().count() == 66));
        assert!(lines.len() > 12);
    }
}
