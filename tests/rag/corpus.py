"""Small document sets for the RAG tests and the benchmark: files of every parsed kind, and a
labelled set (query → the file that answers it) for recall."""

from __future__ import annotations

from pathlib import Path

import docx

LABELLED_DOCS = {
    "refunds.md": "# Refunds\n\nCustomers may return any unused item within 30 days of delivery and get "
    "their money back in full. Refunds are paid to the original card within five business days.",
    "shipping.md": "# Shipping\n\nParcels leave our warehouse every weekday. Delivery inside the EU "
    "takes two to four days; overseas orders travel by air freight and take up to two weeks.",
    "passwords.md": "# Account security\n\nTo change a forgotten password, open the login page and click "
    "'reset'. We email a link that expires after one hour. Enable two-factor authentication.",
    "pricing.md": "# Plans and pricing\n\nThe Starter plan costs 9 euros a month; the Team plan costs 29 "
    "euros per seat. Annual billing saves two months. Students get the Team plan for free.",
    "gardening.txt": "Tomatoes need six hours of direct sunlight. Water the soil, not the leaves, "
    "early in the morning, and stake the plants once they reach knee height.",
    "baking.txt": "For a sourdough loaf, feed the starter the night before, mix flour and water, rest "
    "the dough for an hour, then fold it every thirty minutes. Bake at 240 degrees in a Dutch oven.",
    "retry.py": 'def backoff_delay(attempt: int) -> float:\n    """Exponential backoff with jitter for '
    'retrying failed HTTP requests."""\n    return min(30.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.5)\n',
    "db.py": 'def open_pool(dsn: str) -> Pool:\n    """Create the PostgreSQL connection pool used by every '
    'request handler."""\n    return Pool(dsn, min_size=2, max_size=20)\n',
    "holidays.md": "# Office holidays\n\nThe office is closed on public holidays and between Christmas and "
    "New Year. Support answers urgent tickets by email during closures.",
    "privacy.md": "# Privacy\n\nWe keep personal data only as long as the account exists. You can ask for an "
    "export or the deletion of your data under GDPR article 17 at any time.",
    "telescope.txt": "Saturn's rings are visible through a small telescope at 50x magnification. Look for "
    "the planet low in the southern sky after sunset in late summer.",
    "invoice.md": "# Invoices\n\nEvery payment produces a PDF invoice with your VAT number. Invoices can be "
    "downloaded from the billing page; error code INV-4042 means the VAT number failed validation.",
}

QUERIES = [
    ("how long do I have to send back a product and get my money", "refunds.md"),
    ("how many days does delivery to Europe take", "shipping.md"),
    ("I forgot my password, how do I reset it", "passwords.md"),
    ("how much does the team subscription cost", "pricing.md"),
    ("when should I water tomato plants", "gardening.txt"),
    ("how to make bread with a starter", "baking.txt"),
    ("exponential backoff jitter", "retry.py"),
    ("where is the database connection pool created", "db.py"),
    ("is the office open between Christmas and New Year", "holidays.md"),
    ("right to be forgotten, delete my personal data", "privacy.md"),
    ("observing planets with a telescope", "telescope.txt"),
    ("INV-4042", "invoice.md"),
]


def write_labelled(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in LABELLED_DOCS.items():
        (folder / name).write_text(text)


def write_pdf(path: Path, lines: list[str]) -> None:
    """A minimal one-page PDF with *lines* of Helvetica text (no PDF writer needed)."""
    ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))


def write_docx(path: Path, paragraphs: list[str]) -> None:
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    document.save(str(path))


def write_mixed(folder: Path) -> None:
    """One file of each kind the store parses, plus files it must skip."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "guide.md").write_text("# Guide\n\nThe aurora borealis is best seen in Tromso in winter.\n")
    (folder / "notes.txt").write_text("Remember to renew the passport before the trip to Japan.\n")
    (folder / "code.py").write_text('def fibonacci(n):\n    """The n-th Fibonacci number."""\n    return n\n')
    write_pdf(
        folder / "manual.pdf", ["The espresso machine needs descaling every month.", "Use citric acid."]
    )
    write_docx(
        folder / "report.docx", ["Quarterly report", "Revenue of the kayak rental grew by 40 percent."]
    )
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (folder / "node_modules").mkdir()
    (folder / "node_modules" / "lib.js").write_text("module.exports = 'dependency code';\n")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
