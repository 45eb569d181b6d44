"""knowledge_points.videos_dir: the local folder (or glob) whose files a point's videos are read from

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('knowledge_points', schema=None) as batch_op:
        batch_op.add_column(sa.Column('videos_dir', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('knowledge_points', schema=None) as batch_op:
        batch_op.drop_column('videos_dir')
