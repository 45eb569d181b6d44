"""videos.cover_url and subjects.recipe (URL-manifest corpora, video-text pairs)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cover_url', sa.Text(), nullable=True))
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipe', sa.String(length=32), server_default='textbook', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.drop_column('recipe')
    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.drop_column('cover_url')
