#!/usr/bin/env python3
"""The second corpus of the time-to-quality sweep, made offline from this machine: the Python
standard library's `.py` sources (/usr/lib/python3.*), test/ and tests/ folders left out.

  python3 make_code_corpus.py OUT

Files are taken in sorted path order, each after a one-line header `# ==== <path relative to
the library> ====`, so the same installation always gives the same bytes. Symbolic links are not
followed (the library's own files only) and a file that is not UTF-8 is left out (and named), so
that the corpus is a character-level text. Prints the size, the SHA-256 and the Python version the
sources came from; the corpus itself is never committed (about 10 MB of code).
"""

import glob
import hashlib
import os
import re
import subprocess
import sys

LIBRARY_GLOB = "/usr/lib/python3.*"
SKIPPED_FOLDERS = {"test", "tests", "__pycache__"}


def library_dirs():
    """The versioned standard-library folders (python3.11, …), oldest version first."""
    dirs = [d for d in glob.glob(LIBRARY_GLOB) if os.path.isdir(d) and re.search(r"python3\.\d+$", d)]
    return sorted(dirs, key=lambda d: int(d.rsplit(".", 1)[1]))


def sources(library):
    """Paths of the library's .py files, sorted, outside test/ and tests/ folders."""
    found = []
    for folder, subfolders, files in os.walk(library):
        subfolders[:] = [s for s in subfolders if s not in SKIPPED_FOLDERS]
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".py") and not os.path.islink(path) and os.path.isfile(path):
                found.append(path)
    return sorted(found)


def python_version(library):
    """The interpreter release beside the library (`Python 3.11.2`), else the folder's version."""
    interpreter = os.path.join("/usr/bin", os.path.basename(library))
    try:
        out = subprocess.run([interpreter, "--version"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except OSError:
        pass
    return "Python " + os.path.basename(library)[len("python"):]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_code_corpus.py OUT")
    out_path = sys.argv[1]
    if os.path.exists(out_path):
        sys.exit(f"error: '{out_path}' exists; give a new path (this script never replaces a file)")
    libraries = library_dirs()
    if not libraries:
        sys.exit(f"error: no Python standard library found at {LIBRARY_GLOB}")
    library = libraries[-1]  # the newest, when several are installed
    parts, skipped = [], []
    for path in sources(library):
        with open(path, "rb") as f:
            data = f.read()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            skipped.append(path)
            continue
        header = f"# ==== {os.path.relpath(path, library)} ====\n".encode()
        parts.append(header + data + (b"" if data.endswith(b"\n") or not data else b"\n"))
    corpus = b"".join(parts)
    tmp = out_path + ".tmp"
    with open(tmp, "xb") as f:
        f.write(corpus)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, out_path)
    print(f"wrote {out_path}: {len(corpus):,} bytes, {len(corpus.decode('utf-8')):,} characters, "
          f"{len(parts)} files from {library} ({python_version(library)})")
    print(f"sha256 {hashlib.sha256(corpus).hexdigest()}")
    for path in skipped:
        print(f"left out (not UTF-8): {path}")


if __name__ == "__main__":
    main()
