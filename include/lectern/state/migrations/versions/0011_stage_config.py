"""video_stages.config: the settings behind a result's version, recorded with it (a release's lineage)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('video_stages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('config', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('video_stages', schema=None) as batch_op:
        batch_op.drop_column('config')
