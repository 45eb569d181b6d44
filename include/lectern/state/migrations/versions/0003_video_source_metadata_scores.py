"""video_sources: metadata relevance and LLM metadata score per (video, knowledge point)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('video_sources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('relevance', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('llm_score', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('llm_response', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('video_sources', schema=None) as batch_op:
        batch_op.drop_column('llm_response')
        batch_op.drop_column('llm_score')
        batch_op.drop_column('relevance')
