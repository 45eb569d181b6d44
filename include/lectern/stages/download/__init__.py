"""download: pre-download filter (prefilter.py), yt-dlp download (H.264 <= 720p preferred), ffprobe, store.
A local file (lectern.local_files) is read where it is instead, then probed and stored the same way. A video with
a cover image (a manifest's cover_url) gets it fetched too, through the same SSRF guard, size-capped and checked as
an image; a cover that cannot be had is recorded with why, and the video goes on without it."""
