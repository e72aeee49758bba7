"""Lays thumbnails out on labelled pages: python3 contact_sheet.py THUMBS OUT."""
import pathlib
import sys

from PIL import Image, ImageDraw, ImageFont

COLUMNS, ROWS, TILE, LABEL = 8, 6, 200, 16


def main(thumbs: pathlib.Path, out: pathlib.Path) -> None:
    files = sorted(thumbs.glob("*.jpg"))
    font = ImageFont.load_default()
    per_page = COLUMNS * ROWS
    for page in range(0, len(files), per_page):
        sheet = Image.new("RGB", (COLUMNS * TILE, ROWS * (TILE + LABEL)), (40, 40, 48))
        draw = ImageDraw.Draw(sheet)
        for i, path in enumerate(files[page:page + per_page]):
            x, y = (i % COLUMNS) * TILE, (i // COLUMNS) * (TILE + LABEL)
            with Image.open(path) as thumb:
                thumb = thumb.convert("RGB")
                sheet.paste(thumb, (x + (TILE - thumb.width) // 2, y + (TILE - thumb.height) // 2))
            name = path.name.removesuffix(".jpg")
            label = name if len(name) <= 32 else "…" + name[-31:]
            draw.text((x + 4, y + TILE + 2), label, fill=(230, 230, 230), font=font)
        target = out / f"page-{page // per_page + 1}.png"
        sheet.save(target)
        print(target)


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]))
