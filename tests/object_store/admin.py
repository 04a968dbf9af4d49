"""Talks to the local moto server for tests/object_store.rs, with boto3 (installed with moto).

    admin.py ENDPOINT credentials            -> one line: ACCESS_KEY_ID SECRET_ACCESS_KEY
    admin.py ENDPOINT KEY SECRET mb BUCKET   -> creates the bucket
    admin.py ENDPOINT KEY SECRET put BUCKET KEY FILE
    admin.py ENDPOINT KEY SECRET get BUCKET KEY FILE
    admin.py ENDPOINT KEY SECRET ls BUCKET   -> the objects' keys, one a line
    admin.py ENDPOINT KEY SECRET uploads BUCKET -> the pending multipart uploads' keys, one a line
    admin.py ENDPOINT KEY SECRET parts BUCKET   -> how many parts the pending uploads hold

`credentials` makes an IAM user allowed everything on S3 and gives its access key: the server
runs with INITIAL_NO_AUTH_ACTION_COUNT=3, so these three IAM calls are the only ones it takes
without a valid signature; every later request is checked against its users' keys.
"""
import sys

import boto3


def client(service, endpoint, key="testing", secret="testing"):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


def main(argv):
    endpoint = argv[1]
    if argv[2] == "credentials":
        iam = client("iam", endpoint)
        iam.create_user(UserName="skel")
        iam.put_user_policy(
            UserName="skel",
            PolicyName="s3",
            PolicyDocument='{"Version": "2012-10-17", "Statement": '
            '[{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}',
        )
        key = iam.create_access_key(UserName="skel")["AccessKey"]
        print(key["AccessKeyId"], key["SecretAccessKey"])
        return
    key, secret, command, *args = argv[2:]
    s3 = client("s3", endpoint, key, secret)
    if command == "mb":
        s3.create_bucket(Bucket=args[0])
    elif command == "put":
        s3.upload_file(args[2], args[0], args[1])
    elif command == "get":
        s3.download_file(args[0], args[1], args[2])
    elif command == "ls":
        for o in s3.list_objects_v2(Bucket=args[0]).get("Contents", []):
            print(o["Key"])
    elif command == "uploads":
        for u in s3.list_multipart_uploads(Bucket=args[0]).get("Uploads", []):
            print(u["Key"])
    elif command == "parts":
        uploads = s3.list_multipart_uploads(Bucket=args[0]).get("Uploads", [])
        print(sum(
            len(s3.list_parts(Bucket=args[0], Key=u["Key"], UploadId=u["UploadId"]).get("Parts", []))
            for u in uploads
        ))
    else:
        sys.exit(f"admin.py: unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
