#!/usr/bin/env python3
"""Stream a GeoJSON FeatureCollection and print one `code<TAB>geometry-json` line
per feature, in PostgreSQL COPY text format (used by scripts/bench-postgis.sh).

Stdlib only. The file may be a single huge line, so it is read in chunks and the
features are decoded one at a time with json.JSONDecoder.raw_decode; memory use
stays bounded by the chunk size plus one feature.

Usage: geojson_to_tsv.py FILE.geojson > grids.tsv
       geojson_to_tsv.py --bbox FILE.geojson   # prints "minlon minlat maxlon maxlat"
"""
import json
import sys

CHUNK = 8 << 20  # characters per read


class Stream:
    """A growing text buffer over a file, with a read position."""

    def __init__(self, f):
        self.f, self.buf, self.pos, self.eof = f, "", 0, False
        self.dec = json.JSONDecoder()

    def fill(self):
        if self.eof:
            raise ValueError("unexpected end of GeoJSON input")
        data = self.f.read(CHUNK)
        if not data:
            self.eof = True
            return
        # Drop what has already been consumed before appending.
        self.buf = self.buf[self.pos:] + data
        self.pos = 0

    def peek(self):
        """Skip whitespace and return the next character ('' at EOF)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos:self.pos + 1]
            self.fill()

    def expect(self, ch):
        if self.peek() != ch:
            raise ValueError(f"expected {ch!r} at offset ~{self.pos}, got {self.peek()!r}")
        self.pos += 1

    def value(self):
        """Decode one JSON value, reading more input while it is incomplete."""
        self.peek()
        while True:
            try:
                obj, end = self.dec.raw_decode(self.buf, self.pos)
                # A scalar (e.g. a number) ending exactly at the buffer end may be cut.
                if end == len(self.buf) and not self.eof:
                    self.fill()
                    continue
                self.pos = end
                return obj
            except json.JSONDecodeError:
                if self.eof:
                    raise
                self.fill()


def features(f):
    """Yield the features of a top-level FeatureCollection object, one by one."""
    s = Stream(f)
    s.expect("{")
    found = False
    while s.peek() != "}":
        key = s.value()
        s.expect(":")
        if key == "features":
            found = True
            s.expect("[")
            while s.peek() != "]":
                yield s.value()
                if s.peek() == ",":
                    s.pos += 1
            s.expect("]")
        else:
            s.value()  # skip "type", "crs", "bbox", ...
        if s.peek() == ",":
            s.pos += 1
    if not found:
        raise ValueError("no 'features' array in the GeoJSON input")


def walk_coords(c):
    """Yield (lon, lat) pairs from nested GeoJSON coordinate arrays."""
    if c and isinstance(c[0], (int, float)):
        yield c[0], c[1]
    else:
        for x in c:
            yield from walk_coords(x)


def main():
    args = sys.argv[1:]
    bbox = args[:1] == ["--bbox"]
    if bbox:
        args = args[1:]
    if len(args) != 1:
        sys.exit(__doc__)
    out = sys.stdout
    box = [float("inf"), float("inf"), float("-inf"), float("-inf")]
    n = 0
    with open(args[0], encoding="utf-8") as f:
        for feat in features(f):
            geom = feat.get("geometry")
            code = (feat.get("properties") or {}).get("code")
            if not geom or code is None:
                sys.exit(f"feature #{n} has no geometry or no properties.code")
            n += 1
            if bbox:
                for lon, lat in walk_coords(geom["coordinates"]):
                    box = [min(box[0], lon), min(box[1], lat), max(box[2], lon), max(box[3], lat)]
                continue
            text = json.dumps(geom, separators=(",", ":"))
            # COPY text format: backslash is the only special char that can occur here
            # (json.dumps never emits raw tabs or newlines).
            out.write(f"{code}\t{text.replace(chr(92), chr(92) * 2)}\n")
    if bbox:
        print(*box)
    print(f"geojson_to_tsv: {n} features", file=sys.stderr)


if __name__ == "__main__":
    main()
