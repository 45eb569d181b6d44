"""Indices for the queries that run at scale: a claim (stage and status, a retry's time), a subject's videos (a
point's sources), the rows since a run began (created_at)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_video_stages_stage_status', 'video_stages', ['stage', 'status'])
    op.create_index('ix_video_stages_retry_at', 'video_stages', ['retry_at'])
    op.create_index('ix_video_stages_created_at', 'video_stages', ['created_at'])
    op.create_index('ix_video_sources_point_id', 'video_sources', ['point_id'])


def downgrade() -> None:
    op.drop_index('ix_video_sources_point_id', table_name='video_sources')
    op.drop_index('ix_video_stages_created_at', table_name='video_stages')
    op.drop_index('ix_video_stages_retry_at', table_name='video_stages')
    op.drop_index('ix_video_stages_stage_status', table_name='video_stages')
