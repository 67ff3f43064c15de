//! The error codes of each response, as Kafka's `AbstractResponse.errorCounts()` lists them:
//! the top-level code and every per-topic, per-partition, per-group and per-member one.

use kafka_protocol::messages::*;

/// A response whose error codes can be counted.
pub trait ErrorCodes {
    /// Calls `each` with every error code in the response, zeros included.
    fn error_codes(&self, each: &mut dyn FnMut(i16));
}

/// Implements [`ErrorCodes`] from the paths to a response's codes: `{ fields }` names codes
/// at one level, `list => ({ fields }; …)` the codes inside each element of a list.
macro_rules! error_codes {
    ($response:ty { $($field:ident),* $(,)? } $(; $list:ident => $inner:tt)*) => {
        impl ErrorCodes for $response {
            fn error_codes(&self, each: &mut dyn FnMut(i16)) {
                $(each(self.$field);)*
                $(error_codes!(@walk self.$list, each, $inner);)*
            }
        }
    };
    (@walk $list:expr, $each:ident, ({ $($field:ident),* $(,)? } $(; $sub:ident => $inner:tt)*)) => {
        for item in &$list {
            $($each(item.$field);)*
            $(error_codes!(@walk item.$sub, $each, $inner);)*
        }
    };
}

error_codes!(ProduceResponse {}; responses => ({}; partition_responses => ({ error_code })));
error_codes!(FetchResponse { error_code }; responses => ({}; partitions => ({ error_code })));
error_codes!(ListOffsetsResponse {}; topics => ({}; partitions => ({ error_code })));
error_codes!(MetadataResponse {}; topics => ({ error_code }; partitions => ({ error_code })));
error_codes!(OffsetForLeaderEpochResponse {}; topics => ({}; partitions => ({ error_code })));
error_codes!(ApiVersionsResponse { error_code });
error_codes!(CreateTopicsResponse {}; topics => ({ error_code }));
error_codes!(DeleteTopicsResponse {}; responses => ({ error_code }));
error_codes!(InitProducerIdResponse { error_code });
error_codes!(DescribeConfigsResponse {}; results => ({ error_code }));
error_codes!(AlterConfigsResponse {}; responses => ({ error_code }));
error_codes!(CreatePartitionsResponse {}; results => ({ error_code }));
error_codes!(IncrementalAlterConfigsResponse {}; responses => ({ error_code }));
error_codes!(DescribeClusterResponse { error_code });
error_codes!(DescribeLogDirsResponse { error_code }; results => ({ error_code }));
error_codes!(FindCoordinatorResponse { error_code }; coordinators => ({ error_code }));
error_codes!(JoinGroupResponse { error_code });
error_codes!(SyncGroupResponse { error_code });
error_codes!(HeartbeatResponse { error_code });
error_codes!(LeaveGroupResponse { error_code }; members => ({ error_code }));
error_codes!(OffsetCommitResponse {}; topics => ({}; partitions => ({ error_code })));
error_codes!(
    OffsetFetchResponse { error_code };
    topics => ({}; partitions => ({ error_code }));
    groups => ({ error_code }; topics => ({}; partitions => ({ error_code })))
);
error_codes!(ListGroupsResponse { error_code });
error_codes!(DescribeGroupsResponse {}; groups => ({ error_code }));
error_codes!(DeleteGroupsResponse {}; results => ({ error_code }));
error_codes!(OffsetDeleteResponse { error_code }; topics => ({}; partitions => ({ error_code })));
error_codes!(
    ElectLeadersResponse { error_code };
    replica_election_results => ({}; partition_result => ({ error_code }))
);
error_codes!(
    AlterPartitionReassignmentsResponse { error_code };
    responses => ({}; partitions => ({ error_code }))
);
error_codes!(ListPartitionReassignmentsResponse { error_code });
error_codes!(DeleteRecordsResponse {}; topics => ({}; partitions => ({ error_code })));
error_codes!(
    WriteTxnMarkersResponse {};
    markers => ({}; topics => ({}; partitions => ({ error_code })))
);
error_codes!(
    AddPartitionsToTxnResponse { error_code };
    results_by_topic_v3_and_below => ({}; results_by_partition => ({ partition_error_code }));
    results_by_transaction => ({}; topic_results => ({}; results_by_partition => ({ partition_error_code })))
);
error_codes!(AddOffsetsToTxnResponse { error_code });
error_codes!(ConsumerGroupHeartbeatResponse { error_code });
error_codes!(ConsumerGroupDescribeResponse {}; groups => ({ error_code }));
error_codes!(EndTxnResponse { error_code });
error_codes!(TxnOffsetCommitResponse {}; topics => ({}; partitions => ({ error_code })));
error_codes!(DescribeTransactionsResponse {}; transaction_states => ({ error_code }));
error_codes!(ListTransactionsResponse { error_code });
error_codes!(DescribeQuorumResponse { error_code }; topics => ({}; partitions => ({ error_code })));
error_codes!(DescribeTopicPartitionsResponse {}; topics => ({ error_code }));
error_codes!(ListConfigResourcesResponse { error_code });
error_codes!(DescribeProducersResponse {}; topics => ({}; partitions => ({ error_code })));

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(response: &impl ErrorCodes) -> Vec<i16> {
        let mut all = Vec::new();
        response.error_codes(&mut |code| all.push(code));
        all
    }

    #[test]
    fn nested_codes_are_all_listed() {
        let response = ProduceResponse::default().with_responses(vec![
            produce_response::TopicProduceResponse::default().with_partition_responses(vec![
                produce_response::PartitionProduceResponse::default().with_error_code(6),
                produce_response::PartitionProduceResponse::default().with_error_code(0),
            ]),
        ]);
        assert_eq!(codes(&response), vec![6, 0]);
        let response = OffsetFetchResponse::default()
            .with_error_code(0)
            .with_groups(vec![
                offset_fetch_response::OffsetFetchResponseGroup::default()
                    .with_error_code(16)
                    .with_topics(vec![
                        offset_fetch_response::OffsetFetchResponseTopics::default()
                            .with_partitions(vec![
                                offset_fetch_response::OffsetFetchResponsePartitions::default()
                                    .with_error_code(3),
                            ]),
                    ]),
            ]);
        assert_eq!(codes(&response), vec![0, 16, 3]);
    }
}
error_codes!(SaslHandshakeResponse { error_code });
error_codes!(SaslAuthenticateResponse { error_code });
error_codes!(DescribeUserScramCredentialsResponse { error_code }; results => ({ error_code }));
error_codes!(AlterUserScramCredentialsResponse {}; results => ({ error_code }));
error_codes!(CreateAclsResponse {}; results => ({ error_code }));
error_codes!(DescribeAclsResponse { error_code });
error_codes!(DeleteAclsResponse {}; filter_results => ({ error_code }));
