package io.github.druidbackup.testauth;

import org.apache.druid.server.security.Access;
import org.apache.druid.server.security.Action;
import org.apache.druid.server.security.AuthenticationResult;
import org.apache.druid.server.security.Authorizer;
import org.apache.druid.server.security.Resource;

/** Test only: refuses every action on every resource, naming what was refused. */
public class DenyAuthorizer implements Authorizer
{
  @Override
  public Access authorize(AuthenticationResult authenticationResult, Resource resource, Action action)
  {
    return Access.deny(
        "testDeny refuses " + authenticationResult.getIdentity() + " " + action + " on " + resource.getType()
        + " " + resource.getName()
    );
  }
}
