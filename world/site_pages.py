"""The site's documents, shaped for yt-dlp's generic extractor.

- The search result is an RSS 2.0 feed: yt-dlp reads it as a playlist whose entries carry
  `title`, `description`, `duration` (itunes:duration) and `timestamp` (pubDate) and whose
  `url` is the item's `<link>`, the watch page. No `<enclosure>` (it would replace the link
  and skip the watch page) and no `<guid>` (it would smuggle a fragment into the url).
- The watch page carries one schema.org VideoObject in JSON-LD (name, description, author,
  duration, uploadDate, contentUrl with encodingFormat video/mp4, license) plus og: tags. It
  has no `<video>` tag: yt-dlp's HTML5 embed extractor runs before JSON-LD and would rename
  the id to "<id>-1".
"""

import datetime
import html
import json
import re
from email.utils import format_datetime
from xml.sax.saxutils import escape

from world.site_catalog import VideoRecord

_ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # chars XML 1.0 forbids


def search_feed(base_url: str, query: str, records: list[VideoRecord]) -> bytes:
    """The RSS 2.0 feed listing `records` as the result of searching for `query`."""
    items = []
    for record in records:
        fields = [
            f"<title>{_xml_text(record.title)}</title>",
            f"<link>{_xml_text(watch_url(base_url, record.id))}</link>",
            f"<description>{_xml_text(record.description)}</description>",
            f"<itunes:duration>{record.duration_s:.3f}</itunes:duration>",
        ]
        if record.upload_date:
            fields.append(f"<pubDate>{format_datetime(_upload_datetime(record.upload_date))}</pubDate>")
        items.append("<item>" + "".join(fields) + "</item>")
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<rss version="2.0" xmlns:itunes="{_ITUNES_NS}"><channel>'
        f"<title>{_xml_text(f'Search: {query}')}</title>"
        f"<link>{_xml_text(base_url)}/</link>"
        f"<description>{_xml_text(f'{len(records)} videos matching {query!r}')}</description>"
        + "".join(items)
        + "</channel></rss>\n"
    )
    return document.encode()


def watch_page(base_url: str, record: VideoRecord, announce_size: bool = True) -> bytes:
    """The HTML watch page of one video: JSON-LD VideoObject and og: tags, no <video> tag;
    `announce_size` False leaves out contentSize (what yt-dlp reads as the file size)."""
    media = media_url(base_url, record.id)
    video_object = {
        "@context": "https://schema.org",
        "@type": "VideoObject",
        "identifier": record.id,
        "name": record.title,
        "description": record.description,
        "author": {"@type": "Person", "name": record.uploader},
        "license": record.license,
        "duration": f"PT{record.duration_s:.3f}S",
        "contentUrl": media,
        "encodingFormat": "video/mp4",
    }
    if announce_size:
        video_object["contentSize"] = str(record.path.stat().st_size)
    if record.upload_date:
        video_object["uploadDate"] = _upload_datetime(record.upload_date).date().isoformat()
    if record.width and record.height:
        video_object.update(width=record.width, height=record.height)
    # "</" inside a <script> would end it early; JSON allows "<\/".
    json_ld = json.dumps(video_object).replace("</", "<\\/")

    def meta(prop: str, value: str) -> str:
        return f'<meta property="{prop}" content="{html.escape(value)}">'

    head = "".join(
        [
            '<meta charset="utf-8">',
            f"<title>{html.escape(record.title)}</title>",
            meta("og:type", "video.other"),
            meta("og:title", record.title),
            meta("og:description", record.description),
            meta("og:video", media),
            meta("og:video:type", "video/mp4"),
            f'<script type="application/ld+json">{json_ld}</script>',
        ]
    )
    body = (
        f"<h1>{html.escape(record.title)}</h1>"
        f"<p>{html.escape(record.uploader)} · licence {html.escape(record.license)}"
        f" · {record.duration_s:.1f} s</p>"
        f"<p>{html.escape(record.description)}</p>"
    )
    return f"<!DOCTYPE html>\n<html><head>{head}</head><body>{body}</body></html>\n".encode()


def metadata_json(base_url: str, record: VideoRecord) -> bytes:
    """The video's public metadata as JSON (GET /api/videos/<id>.json), licence included."""
    document = {
        "id": record.id,
        "title": record.title,
        "description": record.description,
        "uploader": record.uploader,
        "license": record.license,
        "duration_s": record.duration_s,
        "upload_date": record.upload_date,
        "width": record.width,
        "height": record.height,
        "fps": record.fps,
        "webpage_url": watch_url(base_url, record.id),
        "media_url": media_url(base_url, record.id),
        "filesize": record.path.stat().st_size,
    }
    return json.dumps(document, indent=1).encode()


def watch_url(base_url: str, video_id: str) -> str:
    return f"{base_url}/watch/{video_id}"


def media_url(base_url: str, video_id: str) -> str:
    return f"{base_url}/media/{video_id}.mp4"


def _upload_datetime(upload_date: str) -> datetime.datetime:
    return datetime.datetime.strptime(upload_date, "%Y%m%d").replace(tzinfo=datetime.timezone.utc)


def _xml_text(text: str) -> str:
    """Text safe inside an XML element: forbidden characters become spaces, markup escaped."""
    return escape(_NOT_XML.sub(" ", text))
