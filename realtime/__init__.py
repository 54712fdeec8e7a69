"""Asyncio frame pipeline: sources, stage workers and sinks (WebRTC, virtual camera, file)."""
