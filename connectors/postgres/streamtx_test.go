package postgres

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// streamMsg is an insert-like message of a stream: type, xid, body.
func streamMsg(xid uint32, body string) []byte {
	b := []byte{'I', 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], xid)
	return append(b, body...)
}

func TestSpool(t *testing.T) {
	type step struct {
		xid   uint32
		body  string
		abort bool // abort subtransaction xid instead of adding
	}
	tests := []struct {
		name  string
		steps []step
		want  []string
	}{
		{
			name:  "messages come back in order without their xid",
			steps: []step{{xid: 10, body: "a"}, {xid: 10, body: "b"}},
			want:  []string{"Ia", "Ib"},
		},
		{
			name: "an aborted subtransaction is cut out with those begun after it",
			steps: []step{
				{xid: 10, body: "a"},
				{xid: 11, body: "s1"},
				{xid: 12, body: "s2"},
				{xid: 11, body: "s1 again"},
				{xid: 11, abort: true},
				{xid: 10, body: "b"},
			},
			want: []string{"Ia", "Ib"},
		},
		{
			name: "a subtransaction aborted after a later one keeps the earlier ones",
			steps: []step{
				{xid: 10, body: "a"},
				{xid: 11, body: "s1"},
				{xid: 12, body: "s2"},
				{xid: 12, abort: true},
				{xid: 13, body: "s3"},
			},
			want: []string{"Ia", "Is1", "Is3"},
		},
		{
			name: "aborting a subtransaction that sent nothing drops nothing",
			steps: []step{
				{xid: 10, body: "a"},
				{xid: 99, abort: true},
			},
			want: []string{"Ia"},
		},
		{
			name:  "an empty spool replays nothing",
			steps: nil,
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := newSpool(t.TempDir(), 10)
			if err != nil {
				t.Fatal(err)
			}
			defer sp.close()
			for _, st := range tt.steps {
				if st.abort {
					err = sp.abortSub(st.xid)
				} else {
					err = sp.add(streamMsg(st.xid, st.body))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			if err := sp.replay(func(m []byte) error { got = append(got, string(m)); return nil }); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("replayed messages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSpoolRefusesAMessageWithoutXid(t *testing.T) {
	sp, err := newSpool(t.TempDir(), 10)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	if err := sp.add([]byte{'I', 0}); err == nil {
		t.Fatal("a two-byte message was spooled")
	}
}
